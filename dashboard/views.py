"""The HTML pages. Each page has a partial (`_page.html`) that `?fragment=1` returns on
its own: the page's script refetches it when the live stream says something changed, so
every name is escaped by Jinja on the server, never assembled in the browser."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from daemon.control import ActionError
from daemon.snapshot import VERSION
from daemon.states import State
from dashboard import auth, contents, history, pagedata, queries, replay, reprocess
from dashboard.api import errors_page, files_page, guarded
from dashboard.sessions import Throttled

if TYPE_CHECKING:
    from dashboard.context import Dashboard

STATE_NAMES = queries.STATES


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def _access(request: Request) -> auth.Access:
    return request.app.state.access


def render(request: Request, page: str, context: dict[str, Any], status: int = 200) -> Response:
    """`page.html`, or only its `_page.html` partial when ?fragment=1."""
    dash = _dash(request)
    fragment = request.query_params.get("fragment") == "1"
    name = f"_{page}.html" if fragment else f"{page}.html"
    ctx = {
        "page": page,
        "token_required": bool(dash.settings.token),
        "authed": _access(request).authorized(request.headers, request.cookies),
        "version": VERSION,
        "states": STATE_NAMES,
        "events_seq": request.state.events_seq,
        **context,
    }
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


def problem(request: Request, message: str, status: int) -> Response:
    return render(request, "problem", {"message": message, "status": status}, status)


async def overview(request: Request) -> Response:
    dash = _dash(request)
    data = pagedata.status(dash)
    return render(request, "overview", {"s": data, "chart": pagedata.chart(data["throughput"])})


def _listing(request: Request, query: Callable[[Request], Any], template: str) -> Response:
    """A page over one of the JSON API's queries (same parameters, same error mapping)."""
    return guarded(
        request,
        query,
        lambda data: render(request, template, {"d": data}),
        lambda message, status: problem(request, message, status),
    )


def files(request: Request) -> Response:
    return _listing(request, files_page, "files")


def _file_page(request: Request, page: str, with_contents: bool) -> Response:
    dash = _dash(request)
    try:
        row = pagedata.file_blocking(dash, request.path_params["uid"])
    except sqlite3.Error as exc:
        return problem(request, f"journal unavailable: {exc}", 503)
    if row is None:
        return problem(request, "no such file", 404)
    shown = contents.contents_blocking(dash, row) if with_contents else []
    notice = request.query_params.get("notice", "")
    return render(request, page, {"f": row, "notice": notice, "contents": shown})


def file_detail(request: Request) -> Response:
    # its live fragment is _file.html's, without the contents (they have their own)
    return _file_page(request, "file", request.query_params.get("fragment") != "1")


def file_contents(request: Request) -> Response:
    """A file's input, summary and outputs, their first lines each (the file page's
    Contents section, refetched when the file finishes)."""
    return _file_page(request, "contents", True)


def file_view(request: Request) -> Response:
    """One part of a file (`dashboard.contents`): a page of its lines, or a sheet."""
    try:
        shown = contents.view_blocking(
            _dash(request), request.path_params["uid"], request.query_params
        )
    except ValueError as exc:
        return problem(request, str(exc), 400)
    except sqlite3.Error as exc:
        return problem(request, f"journal unavailable: {exc}", 503)
    if shown is None:
        return problem(request, "no such file, or it has no such part", 404)
    return render(request, "view", {"v": shown})


def history_page(request: Request) -> Response:
    p = request.query_params

    def page(data: dict[str, Any]) -> Response:
        label = history.PERIODS[data["period"]].label
        chart = history.chart(data["buckets"], label)
        return render(request, "history", {"d": data, "history_chart": chart})

    return guarded(
        request,
        lambda r: history.build(_dash(r), p.get("period") or "day", p.get("route") or None),
        page,
        lambda message, status: problem(request, message, status),
    )


def _errors_page(request: Request) -> dict[str, Any]:
    data = errors_page(request)
    if request.query_params.get("fragment") != "1":  # the live list does not show the form
        data["replay"] = replay.page_blocking(_dash(request), request.query_params)
    return data


def errors(request: Request) -> Response:
    return _listing(request, _errors_page, "errors")


def pipeline(request: Request) -> Response:
    dash = _dash(request)
    # the configs it ran (dashboard.reprocess) and the webhooks' outbox, under the graph:
    # not in its live fragment
    full = "fragment" not in request.query_params
    ran = {"configs": reprocess.configs_blocking(dash)} if full else {}
    notify = dash.api.status()["notify"] if full else []
    page = {"p": pagedata.pipeline_blocking(dash), "r": ran, "notify": notify}
    return render(request, "pipeline", page)


async def upload_page(request: Request) -> Response:
    dash = _dash(request)
    return render(request, "upload", {"max_upload_mb": dash.settings.max_upload_mb})


# -- forms (each answers with a redirect back to a page) ---------------------------------
async def requeue_form(request: Request) -> Response:
    uid = request.path_params["uid"]
    try:
        name = await run_in_threadpool(_dash(request).api.requeue, uid)
    except ActionError as exc:
        return problem(request, str(exc), exc.status)
    notice = quote(f"requeued as unprocessed/{name}")
    return RedirectResponse(f"/files/{quote(uid)}?notice={notice}", status_code=303)


async def replay_form(request: Request) -> Response:
    """The Errors page's confirmation: requeue what the filter matches, if it still
    matches the count shown; back to the page either way, with what happened."""
    return await confirmed_form(request, "/errors", replay.FIELDS, replay.Filter.parse,
                                replay.requeue_blocking, "requeued")  # fmt: skip


async def confirmed_form(
    request: Request,
    page: str,
    fields: tuple[str, ...],
    parse: Callable[[dict[str, Any]], Any],
    act: Callable[[Dashboard, Any, int], dict[str, Any]],
    key: str,
) -> Response:
    """A page's bulk action, confirmed with the count the page showed (`dashboard.replay`'s
    flow): `act(dash, filter, expect)` in a worker thread; back to `page` either way, with
    how many files `act` listed under `key` (and skipped), or the new count to confirm."""
    form = await request.form()
    sent = {k: v for k in fields if isinstance(v := form.get(k), str)}
    try:
        flt = parse(sent)
    except ValueError as exc:
        return problem(request, str(exc), 400)
    raw = form.get("expect")
    if not isinstance(raw, str) or not raw.isdigit():
        return problem(request, "expect: the count the page showed is missing", 400)
    try:
        done = await run_in_threadpool(act, _dash(request), flt, int(raw))
    except replay.CountChanged as exc:
        again = urlencode({**sent, "match": "1", "notice": str(exc)})
        return RedirectResponse(f"{page}?{again}", status_code=303)
    except sqlite3.Error as exc:
        return problem(request, f"journal unavailable: {exc}", 503)
    notice = f"{key} {len(done[key])} file(s)"
    if done["skipped"]:
        notice += f"; {len(done['skipped'])} skipped: {done['skipped'][0]['error']}"
    return RedirectResponse(f"{page}?{urlencode({'notice': notice})}", status_code=303)


async def cancel_form(request: Request) -> Response:
    dash = _dash(request)
    form = await request.form()
    rel = form.get("path")
    if not isinstance(rel, str) or not rel:
        return problem(request, "which file? (form field path)", 400)
    try:
        name = await run_in_threadpool(dash.api.cancel, rel)
    except ActionError as exc:
        return problem(request, str(exc), exc.status)
    uid = await run_in_threadpool(lambda: queries.find_uid(dash.reader.conn(), State.FAILED, name))
    target = f"/files/{quote(uid)}" if uid else "/files?state=failed"
    return RedirectResponse(f"{target}?notice={quote('cancelled')}", status_code=303)


async def login_page(request: Request) -> Response:
    nxt = auth.safe_next(request.query_params.get("next"))
    return render(request, "login", {"next": nxt, "notice": ""})


async def login(request: Request) -> Response:
    access = _access(request)
    form = await request.form()
    token = form.get("token")
    nxt = form.get("next")
    nxt = auth.safe_next(nxt if isinstance(nxt, str) else None)
    if access.token is None:
        return RedirectResponse(nxt, status_code=303)
    client = request.client.host if request.client else None
    try:
        right = access.check_token(client, token if isinstance(token, str) else "")
    except Throttled as exc:
        page = render(request, "login", {"next": nxt, "notice": f"{str(exc).capitalize()}."}, 429)
        page.headers.update(auth.retry_after(exc.retry_after))
        return page
    if not right:
        return render(request, "login", {"next": nxt, "notice": "That token is not right."}, 401)
    return access.login_response(nxt, request.url.scheme == "https")


async def logout(request: Request) -> Response:
    return _access(request).logout_response(request.cookies)
