"""Bulk requeue ("replay") from the Errors page: which failed files a filter matches, and
requeueing them.

A filter names an error type, a route (the start tag the active pipeline's routes give
the file), a GLOB on its name in failed/, and a time range (when it failed); every part is
optional. The page shows the count first and sends it back with the confirmation: if the
filter matches another number by then (files failed, or were requeued, meanwhile),
nothing is requeued and the new count is shown. Each requeue is `DaemonAPI.requeue`'s, run
on the daemon's thread and journalled with the filter as its reason.

Functions named `*_blocking` query the journal and read files' first bytes (for the
route): call them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import structlog

from dashboard import queries
from dashboard.params import moment

if TYPE_CHECKING:
    from dashboard.context import Dashboard

log = structlog.get_logger(__name__)

MAX_FILES = 10_000  # one bulk action at most; narrow the filter (or repeat) for more
SHOWN = 20  # names listed with the count
FIELDS = ("type", "route", "name", "since", "until")


def texts(params: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    """The text parameters `keys` of `params`, stripped ("" when absent); ValueError for one
    that is not a string (a JSON body's number, say)."""
    text = {}
    for key in keys:
        value = params.get(key) or ""
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string")
        text[key] = value.strip()
    return text


@dataclass(frozen=True)
class Filter:
    type: str = ""
    route: str = ""
    name: str = ""
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Filter:
        """From query parameters, a form or a JSON body; ValueError for a bad one."""
        text = texts(params, ("type", "route", "name"))
        return cls(**text, since=moment("since", params.get("since")),
                   until=moment("until", params.get("until")))  # fmt: skip

    def describe(self) -> str:
        """`type=EmptyFile name=*.log` (every file in failed/ when nothing is set)."""
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v not in ("", None)]
        return " ".join(parts) or "every failed file"


def routes(dash: Dashboard) -> list[str]:
    """The start tags a file can be routed to, in route order."""
    config = dash.api.status()["pipeline"].config
    return list(dict.fromkeys(r.start for r in config.routes))


def matching_blocking(dash: Dashboard, flt: Filter) -> dict[str, Any]:
    """The failed files `flt` matches (oldest first): their count and the first names."""
    rows = queries.failed_matching(
        dash.reader.conn(),
        error_type=flt.type or None,
        name=flt.name or None,
        since=flt.since,
        until=flt.until,
        limit=MAX_FILES + 1,
    )
    if flt.route:
        rows = [r for r in rows if dash.api.failed_route(r["rel"]) == flt.route]
    return {
        "filter": asdict(flt),
        "described": flt.describe(),
        "count": min(len(rows), MAX_FILES),
        "too_many": len(rows) > MAX_FILES,
        "max": MAX_FILES,
        "files": rows[:SHOWN],
        "uids": [r["uid"] for r in rows[:MAX_FILES]],
    }


class CountChanged(Exception):
    """The filter matches another number of files than the one confirmed."""

    def __init__(self, match: dict[str, Any], expected: int, verb: str = "requeued") -> None:
        super().__init__(
            f"the filter now matches {match['count']} file(s), not the {expected} you "
            f"confirmed: nothing was {verb}; check the list and confirm again"
        )
        self.match = match


def requeue_blocking(dash: Dashboard, flt: Filter, expect: int) -> dict[str, Any]:
    """Requeue every failed file `flt` matches, if that is still `expect` files."""
    match = matching_blocking(dash, flt)
    if match["count"] != expect or match["too_many"]:
        raise CountChanged(match, expect)
    done = dash.api.requeue_many(match["uids"], f"requeued in bulk ({flt.describe()})")
    requeued = [{"uid": uid, "path": name} for uid, name, _ in done if name is not None]
    skipped = [{"uid": uid, "error": why} for uid, name, why in done if name is None]
    log.info("files_requeued_in_bulk", filter=flt.describe(), requeued=len(requeued),
             skipped=len(skipped))  # fmt: skip
    return {"filter": asdict(flt), "requeued": requeued, "skipped": skipped}


def page_blocking(dash: Dashboard, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Errors page's replay form: the filter as given, the choices, and (once the
    form was sent: `match` in `params`) what it matches."""
    flt = Filter.parse(params)
    return {
        "filter": asdict(flt),
        "raw": {k: params.get(k) or "" for k in FIELDS},
        "types": queries.failed_error_types(dash.reader.conn()),
        "routes": routes(dash),
        "match": matching_blocking(dash, flt) if "match" in params else None,
    }
