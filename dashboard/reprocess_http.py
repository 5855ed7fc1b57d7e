"""The endpoints of reprocessing (`dashboard.reprocess`): the JSON API, the Reprocess page
and its confirmation form, and the configs the daemon has run (`/api/configs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from dashboard import reprocess
from dashboard.api import ORJSONResponse, confirmed, error, guarded
from dashboard.views import confirmed_form, problem, render

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
    usage = ('send JSON {"config", "state", "route", "name", "since", "until": optional '
             'filters, "expect": the count GET /api/reprocess gave}')  # fmt: skip
    return await confirmed(request, reprocess.Filter.parse, reprocess.reprocess_blocking, usage)


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
    return await confirmed_form(request, "/reprocess", reprocess.FIELDS, reprocess.Filter.parse,
                                reprocess.reprocess_blocking, "reprocessed")  # fmt: skip
