"""The endpoints of reprocessing (`dashboard.reprocess`): the JSON API, the Reprocess page
and its confirmation form, and the configs the daemon has run (`/api/configs`)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dashboard import reprocess
from dashboard.api import ORJSONResponse, error, guarded
from dashboard.replay import CountChanged
from dashboard.views import problem, render

if TYPE_CHECKING:
    from dashboard.context import Dashboard


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


def configs(request: Request) -> Response:
    """Every config the daemon has run, with the files whose last run had it."""
    return guarded(
        request,
        lambda r: {"configs": reprocess.configs_blocking(_dash(r))},
        ORJSONResponse,
        error,
    )


def match(request: Request) -> Response:
    """What a reprocess with these query parameters would send back: count, first names."""

    def query(r: Request) -> dict[str, Any]:
        found = reprocess.matching_blocking(_dash(r), reprocess.Filter.parse(r.query_params))
        found.pop("uids")
        return found

    return guarded(request, query, ORJSONResponse, error)


async def run(request: Request) -> Response:
    """Reprocess every file a filter matches: JSON {config, state, route, name, since,
    until, expect}, `expect` being the count the caller saw (409 with the new one if it
    moved)."""
    try:
        body = await request.json()
        if not isinstance(body, dict) or type(body.get("expect")) is not int:
            raise TypeError
        flt = reprocess.Filter.parse(body)
    except ValueError as exc:
        return error(str(exc), 400)
    except TypeError:
        how = ('send JSON {"config", "state", "route", "name", "since", "until": optional '
               'filters, "expect": the count GET /api/reprocess gave}')  # fmt: skip
        return error(how, 400)
    try:
        done = await run_in_threadpool(
            reprocess.reprocess_blocking, _dash(request), flt, body["expect"]
        )
    except CountChanged as exc:
        return ORJSONResponse({"error": str(exc), "count": exc.match["count"]}, status_code=409)
    except sqlite3.Error as exc:
        return error(f"journal unavailable: {exc}", 503)
    return ORJSONResponse(done)


def page(request: Request) -> Response:
    return guarded(
        request,
        lambda r: reprocess.page_blocking(_dash(r), r.query_params),
        lambda data: render(request, "reprocess", {"r": data}),
        lambda message, status: problem(request, message, status),
    )


async def form(request: Request) -> Response:
    """The page's confirmation: reprocess what the filter matches, if it still matches the
    count shown; back to the page either way, with what happened."""
    sent = await request.form()
    fields = {k: v for k in reprocess.FIELDS if isinstance(v := sent.get(k), str)}
    try:
        flt = reprocess.Filter.parse(fields)
    except ValueError as exc:
        return problem(request, str(exc), 400)
    raw = sent.get("expect")
    if not isinstance(raw, str) or not raw.isdigit():
        return problem(request, "expect: the count the page showed is missing", 400)
    try:
        done = await run_in_threadpool(reprocess.reprocess_blocking, _dash(request), flt, int(raw))
    except CountChanged as exc:
        again = urlencode({**fields, "match": "1", "notice": str(exc)})
        return RedirectResponse(f"/reprocess?{again}", status_code=303)
    except sqlite3.Error as exc:
        return problem(request, f"journal unavailable: {exc}", 503)
    notice = f"sent {len(done['reprocessed'])} file(s) back to run again"
    if done["skipped"]:
        notice += f"; {len(done['skipped'])} skipped: {done['skipped'][0]['error']}"
    return RedirectResponse(f"/reprocess?{urlencode({'notice': notice})}", status_code=303)
