"""Reprocess: run finished files again under the config in use now.

A filter names the config their last run had (its digest, or the first 4+ hex digits of
it), their state (`processed`, the default; `failed`; or `all` of both), the route their
last run took (its start tag), a GLOB on their name, and a time range (when they last
moved); every part is optional. The flow is the Errors page's replay
(`dashboard.replay`): the count first, sent back with the confirmation, and nothing moved
if the filter matches another number by then (409). Each file goes back from processed/
(or failed/) to unprocessed/ by `DaemonAPI.requeue_many(..., reprocess=True)`, on the
daemon's thread, journalled with the filter as its reason; it keeps its uid, so its next
run replaces its results and deliveries, and its timeline shows both runs.

Functions named `*_blocking` query the journal: call them in a worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from daemon.states import State
from dashboard import replay
from dashboard.queries import config_glob

if TYPE_CHECKING:
    from dashboard.context import Dashboard

log = structlog.get_logger(__name__)

FIELDS = ("config", "state", "route", "name", "since", "until")
STATES = {
    "processed": (State.PROCESSED.value,),
    "failed": (State.FAILED.value,),
    "all": (State.PROCESSED.value, State.FAILED.value),
}


@dataclass(frozen=True)
class Filter:
    config: str = ""
    state: str = "processed"
    route: str = ""
    name: str = ""
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> Filter:
        """From query parameters, a form or a JSON body; ValueError for a bad one."""
        base = replay.Filter.parse({k: params.get(k) for k in ("route", "name", "since", "until")})
        text = {k: v.lower() for k, v in replay.texts(params, ("config", "state")).items()}
        if text["config"]:
            config_glob(text["config"])  # ValueError unless hex
        state = text["state"] or "processed"
        if state not in STATES:
            raise ValueError(f"state: one of {', '.join(STATES)}, got {state!r}")
        return cls(text["config"], state, base.route, base.name, base.since, base.until)

    def describe(self) -> str:
        """`state=processed config=1a2b3c4d name=*.log`."""
        return " ".join(f"{k}={v}" for k, v in asdict(self).items() if v not in ("", None))


def matching(conn: sqlite3.Connection, flt: Filter, limit: int) -> list[dict[str, Any]]:
    """The files `flt` matches, oldest move first, at most `limit`."""
    states = STATES[flt.state]
    where = [f"state IN ({', '.join('?' * len(states))})"]
    args: list[Any] = [*states]
    for cond, value in (("config_sha256 GLOB ?", config_glob(flt.config) if flt.config else ""),
                        ("route = ?", flt.route), ("rel GLOB ?", flt.name)):  # fmt: skip
        if value:
            where.append(cond)
            args.append(value)
    for cond, moment in (("updated >= ?", flt.since), ("updated <= ?", flt.until)):
        if moment is not None:
            where.append(cond)
            args.append(moment)
    rows = conn.execute(
        "SELECT uid, rel, state, updated, route, config_sha256 FROM files"
        f" WHERE {' AND '.join(where)} ORDER BY updated, id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def matching_blocking(dash: Dashboard, flt: Filter) -> dict[str, Any]:
    """What `flt` matches: its count and the first names (as the Errors page's replay)."""
    rows = matching(dash.reader.conn(), flt, replay.MAX_FILES + 1)
    return {
        "filter": asdict(flt),
        "described": flt.describe(),
        "count": min(len(rows), replay.MAX_FILES),
        "too_many": len(rows) > replay.MAX_FILES,
        "max": replay.MAX_FILES,
        "files": rows[: replay.SHOWN],
        "uids": [r["uid"] for r in rows[: replay.MAX_FILES]],
    }


def reprocess_blocking(dash: Dashboard, flt: Filter, expect: int) -> dict[str, Any]:
    """Send every file `flt` matches back to run again, if that is still `expect` files."""
    match = matching_blocking(dash, flt)
    if match["count"] != expect or match["too_many"]:
        raise replay.CountChanged(match, expect, verb="reprocessed")
    done = dash.api.requeue_many(match["uids"], f"reprocess ({flt.describe()})", reprocess=True)
    queued = [{"uid": uid, "path": name} for uid, name, _ in done if name is not None]
    skipped = [{"uid": uid, "error": why} for uid, name, why in done if name is None]
    log.info("files_reprocessed", filter=flt.describe(), reprocessed=len(queued),
             skipped=len(skipped))  # fmt: skip
    return {"filter": asdict(flt), "reprocessed": queued, "skipped": skipped}


def configs_blocking(dash: Dashboard) -> list[dict[str, Any]]:
    """Every config the daemon has run, the one in use first then the newest loaded, each
    with its files by state (their last run had it)."""
    conn = dash.reader.conn()
    counts: dict[str, dict[str, int]] = {}
    for digest, state, n in conn.execute(
        "SELECT config_sha256, state, COUNT(*) FROM files WHERE config_sha256 IS NOT NULL"
        " GROUP BY config_sha256, state"
    ):
        counts.setdefault(digest, {})[state] = n
    current = dash.api.status()["pipeline"].sha256
    out = []
    for row in conn.execute(
        "SELECT sha256, path, version, description, first_loaded, last_loaded, loads"
        " FROM configs ORDER BY last_loaded DESC LIMIT 200"
    ):
        c = dict(row)
        c["version"] = orjson.loads(c["version"]) if c["version"] else None
        by_state = counts.get(c["sha256"], {})
        c["files"] = by_state
        c["processed"] = by_state.get(State.PROCESSED.value, 0)
        c["failed"] = by_state.get(State.FAILED.value, 0)
        c["produced"] = sum(by_state.values())
        c["current"] = c["sha256"] == current
        out.append(c)
    out.sort(key=lambda c: not c["current"])  # stable: then by last loaded
    return out


def page_blocking(dash: Dashboard, params: Mapping[str, Any]) -> dict[str, Any]:
    """The Reprocess page: the filter as given, the choices, and (once the form was sent:
    `match` in `params`) what it matches."""
    flt = Filter.parse(params)
    return {
        "filter": asdict(flt),
        "raw": {k: params.get(k) or "" for k in FIELDS},
        "configs": configs_blocking(dash),
        "routes": replay.routes(dash),
        "states": list(STATES),
        "match": matching_blocking(dash, flt) if "match" in params else None,
    }
