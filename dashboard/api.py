"""The JSON API: everything the pages show, and the actions.

Reads that touch the journal are sync endpoints (Starlette runs them in its thread pool);
`/api/status`, `/health` and `/metrics` are async and do no I/O beyond statvfs, so they
stay fast while the daemon is busy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from daemon.control import ActionError
from daemon.states import State
from dashboard import contents, health, history, metrics, openapi, pagedata, replay, uploads

if TYPE_CHECKING:
    from dashboard.context import Dashboard

log = structlog.get_logger(__name__)


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS, default=str)


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def error(message: str, status: int) -> Response:
    return ORJSONResponse({"error": message}, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take, a form
    it cannot parse): JSON under /api/, as every other error of the API, plain elsewhere."""
    if not isinstance(exc, HTTPException):
        raise exc
    if request.url.path.startswith("/api/"):
        return ORJSONResponse(
            {"error": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def int_param(request: Request, name: str, default: int, lo: int = 1, hi: int = 500) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(lo, min(int(raw), hi))
    except ValueError:
        raise ValueError(f"{name} must be a number") from None


# -- probes -------------------------------------------------------------------------------
async def health_endpoint(request: Request) -> Response:
    dash = _dash(request)
    code, body = health.health(dash.api.status(), dash.settings.min_disk_free_mb)
    return ORJSONResponse(body, status_code=code, headers={"cache-control": "no-store"})


async def metrics_endpoint(request: Request) -> Response:
    return Response(metrics.render(_dash(request)), media_type=metrics.CONTENT_TYPE_LATEST)


# -- reads ----------------------------------------------------------------------------------
async def openapi_document(request: Request) -> Response:
    return ORJSONResponse(openapi.document())


async def status(request: Request) -> Response:
    return ORJSONResponse(pagedata.status(_dash(request)))


def files_page(request: Request) -> dict[str, Any]:
    """The Files query, from the request's parameters (the JSON API and the page share it)."""
    p = request.query_params
    return pagedata.files_blocking(
        _dash(request),
        state=p.get("state"),
        q=p.get("q"),
        limit=int_param(request, "limit", 50),
        before=p.get("before"),
        after=p.get("after"),
        since=p.get("since"),
        until=p.get("until"),
        config=p.get("config"),
    )


def errors_page(request: Request) -> dict[str, Any]:
    """The Errors query, from the request's parameters."""
    return pagedata.errors_blocking(
        _dash(request),
        limit=int_param(request, "limit", 50),
        before=request.query_params.get("before"),
    )


def guarded(
    request: Request,
    query: Callable[[Request], Any],
    ok: Callable[[Any], Response],
    fail: Callable[[str, int], Response],
) -> Response:
    """Answer `ok(query(request))`, or `fail(message, status)`: a bad parameter is 400, a
    journal that cannot be read is 503."""
    try:
        data = query(request)
    except ValueError as exc:
        return fail(str(exc), 400)
    except sqlite3.Error as exc:
        return fail(f"journal unavailable: {exc}", 503)
    return ok(data)


def files(request: Request) -> Response:
    return guarded(request, files_page, ORJSONResponse, error)


def file_detail(request: Request) -> Response:
    try:
        row = pagedata.file_blocking(_dash(request), request.path_params["uid"])
    except sqlite3.Error as exc:
        return error(f"journal unavailable: {exc}", 503)
    if row is None:
        return error("no such file", 404)
    return ORJSONResponse(row)


def errors(request: Request) -> Response:
    return guarded(request, errors_page, ORJSONResponse, error)


def pipeline(request: Request) -> Response:
    return ORJSONResponse(pagedata.pipeline_blocking(_dash(request)))


def file_view(request: Request) -> Response:
    """A page of one part of a file (`dashboard.contents`): its lines, or a sheet's rows."""

    def view(r: Request) -> dict[str, Any] | None:
        return contents.view_blocking(_dash(r), r.path_params["uid"], r.query_params)

    def found(data: dict[str, Any] | None) -> Response:
        return ORJSONResponse(data) if data else error("no such file, or no such part", 404)

    return guarded(request, view, found, error)


def history_counts(request: Request) -> Response:
    """Files processed and failed per bucket of the last hour, day or week, and per route."""
    p = request.query_params
    return guarded(
        request,
        lambda r: history.build(_dash(r), p.get("period") or "day", p.get("route") or None),
        ORJSONResponse,
        error,
    )


# -- actions --------------------------------------------------------------------------------
async def upload(request: Request) -> Response:
    try:
        accepted = await uploads.receive(request, _dash(request))
    except uploads.UploadError as exc:
        log.info("upload_refused", status=exc.status, reason=str(exc))
        return error(str(exc), exc.status)
    return ORJSONResponse({"files": accepted}, status_code=201)


async def requeue(request: Request) -> Response:
    uid = request.path_params["uid"]
    try:
        name = await run_in_threadpool(_dash(request).api.requeue, uid)
    except ActionError as exc:
        return error(str(exc), exc.status)
    log.info("file_requeue_requested", uid=uid, path=name)
    return ORJSONResponse({"uid": uid, "path": name, "state": State.QUEUED})


async def cancel(request: Request) -> Response:
    try:
        body = await request.json()
        rel = body["path"]
        if not isinstance(rel, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return error('send JSON {"path": "<name in unprocessed/>"}', 400)
    try:
        name = await run_in_threadpool(_dash(request).api.cancel, rel)
    except ActionError as exc:
        return error(str(exc), exc.status)
    log.info("file_cancel_requested", path=rel, failed_as=name)
    return ORJSONResponse({"path": name, "state": State.FAILED, "reason": "cancelled"})


def replay_match(request: Request) -> Response:
    """What a bulk requeue with these query parameters would requeue: the count and the
    first names (`dashboard.replay`)."""

    def match(r: Request) -> dict[str, Any]:
        found = replay.matching_blocking(_dash(r), replay.Filter.parse(r.query_params))
        found.pop("uids")
        return found

    return guarded(request, match, ORJSONResponse, error)


async def replay_requeue(request: Request) -> Response:
    """Requeue every failed file a filter matches: JSON {type, route, name, since, until,
    expect}, `expect` being the count the caller saw (409 with the new one if it moved)."""
    usage = ('send JSON {"type", "route", "name", "since", "until": optional filters, '
             '"expect": the count GET /api/errors/replay gave}')  # fmt: skip
    return await confirmed(request, replay.Filter.parse, replay.requeue_blocking, usage)


async def confirmed(
    request: Request,
    parse: Callable[[dict[str, Any]], Any],
    act: Callable[[Dashboard, Any, int], dict[str, Any]],
    usage: str,
) -> Response:
    """A bulk action confirmed with the count its filter matched (`dashboard.replay`'s
    flow): JSON {<filter>, "expect"}; `act(dash, filter, expect)` in a worker thread; 409
    with the new count if the filter matches another number now."""
    try:
        body = await request.json()
        if not isinstance(body, dict) or type(body.get("expect")) is not int:
            raise TypeError
        flt = parse(body)
    except ValueError as exc:
        return error(str(exc), 400)
    except TypeError:
        return error(usage, 400)
    try:
        done = await run_in_threadpool(act, _dash(request), flt, body["expect"])
    except replay.CountChanged as exc:
        return ORJSONResponse({"error": str(exc), "count": exc.match["count"]}, status_code=409)
    except sqlite3.Error as exc:
        return error(f"journal unavailable: {exc}", 503)
    return ORJSONResponse(done)
