"""What each page (and its JSON twin under /api/) shows, built from the daemon's snapshot,
the journal and the hub's aggregates. Views render these dicts; the API returns them.

Functions named `*_blocking` query the journal or read result summaries: call them in a
worker thread (Starlette runs sync endpoints there), never on the event loop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from daemon.states import State
from dashboard import graph, history, queries
from dashboard.params import moment
from dashboard.queries import Cursor
from formats.names import parsed

if TYPE_CHECKING:
    from dashboard.context import Dashboard

TRACE_FILES = 3
TRACE_LINES = 12


def status(dash: Dashboard) -> dict[str, Any]:
    """The overview's data: cheap (no I/O but what the hub cached)."""
    st = dash.api.status()
    pipeline = st.pop("pipeline")
    return {
        **st,
        "states": dash.hub.state_counts,
        "stats": dash.stats.summary(),
        "throughput": dash.stats.throughput(),
        "system": dash.sampler.last,
        "pipeline_outline": graph.build(pipeline).outline,
        "trace": dash.settings.trace,
        "token_required": bool(dash.settings.token),
    }


def chart(throughput: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar geometry for the inline-SVG throughput chart (one bar per minute)."""
    return history.chart([{**b, "start": b["minute"]} for b in throughput], "%H:%M")


def files_blocking(
    dash: Dashboard,
    *,
    state: str | None,
    q: str | None,
    limit: int,
    before: str | None,
    after: str | None,
    since: str | None = None,
    until: str | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    if state and state not in queries.STATES:
        raise ValueError(f"unknown state {state!r} (one of {', '.join(queries.STATES)})")
    page = queries.list_files(
        dash.reader.conn(),
        state=state or None,
        q=q or None,
        limit=limit,
        before=Cursor.parse(before),
        after=Cursor.parse(after),
        since=moment("since", since),
        until=moment("until", until),
        config=config or None,
    )
    page["state"] = state or None
    page["q"] = q or ""
    page["since"] = since or ""
    page["until"] = until or ""
    page["config"] = config or None
    page["states"] = dash.hub.state_counts
    page["total"] = sum(dash.hub.state_counts.values()) if not state else (
        dash.hub.state_counts.get(state, 0))  # fmt: skip
    first_queued = state in (None, "", State.QUEUED) and not (before or since or until)
    page["waiting"] = waiting(dash, q) if first_queued else []
    page["stuck"] = dash.api.status()["stuck"] if first_queued else []
    page["markers"] = dash.api.status()["markers"] if first_queued else []  # daemon.markers
    return page


def waiting(dash: Dashboard, q: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """Files settled in unprocessed/ and not claimed yet (the journal records them at
    claim), in claim order: highest priority first, then first settled."""
    found = [(path, ts, prio) for path, (ts, prio) in dash.stats.waiting.items()
             if not q or q.lower() in path.lower()]  # fmt: skip
    found.sort(key=lambda f: (-f[2], f[1]))
    return [{"path": p, "queued_at": ts, "priority": prio} for p, ts, prio in found[:limit]]


def summary_path(dash: Dashboard, rel: str) -> Path:
    return dash.api.folders.results / f"{parsed(rel)}.json"


_NUMBERED = re.compile(r"~\d+(?=(\.[^/~]*)?$)")  # the `~N` daemon.moves.numbered adds


def _summary_names(row: dict[str, Any]) -> list[str]:
    """Where this file's summary may be: results/<name>.json under the name it had when it
    last finished. That is its current name, unless a requeue found the name taken in
    unprocessed/ and numbered it (`a.log` → `a~1.log`; again: `a~1~1.log`), so the names
    with those `~N` taken off follow, then the name it arrived under."""
    names = [row["rel"]]
    while (earlier := _NUMBERED.sub("", names[-1], count=1)) != names[-1]:
        names.append(earlier)
    names.append(row["original"])
    return list(dict.fromkeys(names))


def file_blocking(dash: Dashboard, uid: str) -> dict[str, Any] | None:
    row = queries.get_file(dash.reader.conn(), uid)
    if row is None:
        return None
    row["summary"] = None
    # Found by the file's identity: only a summary whose uid is this file's is shown,
    # whichever name it sits under (another input's summary may hold the same name).
    for name in _summary_names(row):
        try:
            data = orjson.loads(summary_path(dash, name).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("uid") == uid:
            row["summary"] = data
            row["summary_path"] = f"{name}.json"
            break
    row["input_path"] = f"{row['state']}/{row['rel']}"
    row["in_flight"] = next((f for f in dash.api.status()["in_flight"] if f["uid"] == uid), None)
    return row


def errors_blocking(dash: Dashboard, *, limit: int, before: str | None) -> dict[str, Any]:
    page = queries.recent_failures(dash.reader.conn(), limit=limit, before=Cursor.parse(before))
    page["total"] = dash.hub.state_counts.get(State.FAILED, 0)
    return page


def pipeline_blocking(dash: Dashboard) -> dict[str, Any]:
    g = graph.build(dash.api.status()["pipeline"])
    node_stats = dash.stats.nodes
    tags = dash.stats.tags
    nodes = []
    for n in g.nodes:
        if n.kind == "processor":
            stats = node_stats.get(n.label, {})
        else:  # a tag's lines; a sink's are its output tag's
            stats = {"lines": tags.get(n.rate_key.partition(":")[2], 0)}
        nodes.append({**n.__dict__, "stats": stats})
    traces = []
    if dash.settings.trace:
        for row in queries.recent_processed(dash.reader.conn(), TRACE_FILES):
            try:
                data = orjson.loads(summary_path(dash, row["rel"]).read_bytes())
            except (OSError, ValueError):
                continue
            if data.get("uid") == row["uid"] and data.get("trace"):
                lines = data["trace"][:TRACE_LINES]
                traces.append({"uid": row["uid"], "rel": row["rel"], "lines": lines})
    return {
        "nodes": nodes,
        "edges": g.edges,
        "width": g.width,
        "height": g.height,
        "box": {"w": graph.BOX_W, "h": graph.BOX_H},
        "outline": g.outline,
        "routes": g.routes,
        "processors": node_stats,
        "tags": dict(tags),
        "files_counted": dash.stats.files_seen,
        "trace": dash.settings.trace,
        "traces": traces,
        "live": graph.live(g, dash.stats.rates.per_second(), dash.stats.rates.errors),
        "window_s": dash.stats.rates.window_s,
    }
