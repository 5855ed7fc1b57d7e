"""The Preview page: a file and a config, run without moving or writing anything.

The file is one in processed/ or failed/ (confined as downloads are: `downloads.resolve`)
or an upload, kept in memory (a spooled temp file past 1 MB) and never put in the queue.
The config is the active one or an edited copy from the page's text area. Both go to the
preview worker process (`dashboard.sandbox`), under the time and size limits
(`--preview-timeout`, `--preview-max-mb`). Every request is a POST, so with a token set
each needs it (`dashboard.auth`): a preview reads a file's contents and an edited config
may import plugins.

Applying an edited config stays a deliberate act: download it, put it in place, reload
(SIGHUP, `systemctl reload folderd`). The page only checks and runs it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from daemon.states import State
from dashboard import downloads, queries
from dashboard.api import ORJSONResponse, error
from dashboard.sandbox import PreviewError
from dashboard.sandbox import Request as PreviewRequest
from dashboard.views import problem, render

if TYPE_CHECKING:
    from dashboard.context import Dashboard

MAX_LINES = 100  # lines shown per output
LISTED = 100  # files of each state offered on the page
CONFIG_MAX = 1 << 20  # an edited config's text
SOURCES = (State.PROCESSED.value, State.FAILED.value)


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def _active_text(dash: Dashboard) -> str:
    return json.dumps(dash.api.status()["pipeline"].raw, indent=2, ensure_ascii=False) + "\n"


def page(request: Request) -> Response:
    dash = _dash(request)
    try:
        conn = dash.reader.conn()
        files = {s: queries.list_files(conn, state=s, limit=LISTED)["files"] for s in SOURCES}
    except sqlite3.Error as exc:
        return problem(request, f"journal unavailable: {exc}", 503)
    # Reads are open to anyone, but a config may hold credentials (a sink's URL): with a
    # token set, only those who have it see the config (the outline elsewhere redacts them).
    authed = request.app.state.access.authorized(request.headers, request.cookies)
    return render(request, "preview", {
        "sources": files,
        "config_text": _active_text(dash) if authed else "",
        "config_name": dash.settings.config.name,
        "timeout_s": dash.settings.preview_timeout,
        "max_mb": dash.settings.preview_max_mb,
        "max_lines": MAX_LINES,
    })  # fmt: skip


async def check(request: Request) -> Response:
    """`{"config": text}` → `{"errors": [{path, line, message}…]}` (debounced as one types)."""
    dash = _dash(request)
    try:
        body = json.loads(await _limited_body(request, CONFIG_MAX))
        text = body["config"]
        if not isinstance(text, str):
            raise TypeError
    except PreviewError as exc:
        return error(str(exc), exc.status)
    except (ValueError, KeyError, TypeError):
        return error('send {"config": "<the config text>"} as JSON', 400)
    return await _answer(dash, PreviewRequest(text, None))


async def preview(request: Request) -> Response:
    """Multipart: `path` (processed/… or failed/…) or a `file` upload, `name` (what the
    upload runs as), `config` (edited text; absent: the active config)."""
    dash = _dash(request)
    limit = dash.settings.preview_max_mb << 20
    try:
        form = await _limited_form(request, limit + CONFIG_MAX + (64 << 10))
    except PreviewError as exc:
        return error(str(exc), exc.status)
    try:
        job = await _request(dash, form, limit)
    except PreviewError as exc:
        return error(str(exc), exc.status)
    finally:
        await form.close()
    return await _answer(dash, job)


async def download(request: Request) -> Response:
    """The edited config sent back as a file to save (form field `config`)."""
    form = await request.form(max_files=0, max_part_size=CONFIG_MAX)
    text = form.get("config")
    if not isinstance(text, str):
        return error("which config? (form field config)", 400)
    name = _dash(request).settings.config.name
    headers = {"content-disposition": downloads.content_disposition(name)}
    return Response(text, media_type="application/json", headers=headers)


async def _answer(dash: Dashboard, job: PreviewRequest) -> Response:
    if job.config_text is None:
        job = PreviewRequest(
            None, dash.api.status()["pipeline"], job.name, job.path, job.data, job.max_lines
        )
    try:
        return ORJSONResponse(await run_in_threadpool(dash.preview.run, job))
    except PreviewError as exc:
        return error(str(exc), exc.status)


async def _request(dash: Dashboard, form: Any, limit: int) -> PreviewRequest:
    config = form.get("config")
    if config is not None and not isinstance(config, str):
        raise PreviewError("config must be a form field, not a file", 400)
    upload, path, name = form.get("file"), form.get("path"), form.get("name")
    run_as = name if isinstance(name, str) and name.strip() else None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read()
        if len(data) > limit:
            raise PreviewError(_too_large(dash), 413)
        name = _run_name(run_as or upload.filename)
        return PreviewRequest(config or None, None, name, data=data, max_lines=MAX_LINES)
    if not isinstance(path, str) or path.split("/", 1)[0] not in SOURCES:
        raise PreviewError("choose a file: path=processed/… or failed/…, or a file upload", 400)
    src = downloads.resolve(dash, "watch", path)
    if src is None:
        raise PreviewError("no such file", 404)
    if os.stat(src).st_size > limit:
        raise PreviewError(_too_large(dash), 413)
    name = _run_name(run_as or path.split("/", 1)[1])
    return PreviewRequest(config or None, None, name, str(src), max_lines=MAX_LINES)


def _run_name(name: str) -> str:
    """The relative path a file runs as (a route's glob may have a "/")."""
    name = name.strip().lstrip("/")
    if not name or "\x00" in name or len(name) > 1024 or ".." in name.split("/"):
        raise PreviewError("the file name to run under is empty or not a relative path", 400)
    return name


def _too_large(dash: Dashboard) -> str:
    return f"the file is larger than the preview limit of {dash.settings.preview_max_mb} MB"


def _limited(request: Request, limit: int) -> Request:
    """`request` whose body is refused (413) past `limit` bytes, however it is sent."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PreviewError(f"request larger than {limit >> 20} MB", 413)
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PreviewError(f"request larger than {limit >> 20} MB", 413)
        return message

    return Request(request.scope, receive)


async def _limited_body(request: Request, limit: int) -> bytes:
    return await _limited(request, limit).body()


async def _limited_form(request: Request, limit: int) -> Any:
    return await _limited(request, limit).form(max_files=1, max_fields=8, max_part_size=CONFIG_MAX)
