"""Throughput and failures over the last hour, day or week, by outcome and by route, from
the journal.

A period is cut into buckets on multiples of its bucket size (a minute, half an hour,
three hours), the last one still open. Each bucket is counted per outcome (processed,
failed) and per route (the start tag a file took, `files.route`) by COUNTs over ranges of
the `files_state_route` index: no row is read, and the cost follows the files finished in
the period, not the journal's size. A bucket that ended over a minute ago is counted once
and kept (a move is journalled a moment after it happens), so a page refreshed every few
seconds counts only the open bucket again, and in its first minute the one before: a
file's count stays where it finished, even if it is requeued later (a history of outcomes).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dashboard import queries

if TYPE_CHECKING:
    import sqlite3

    from dashboard.context import Dashboard

CHART_W = 600
CHART_H = 120
# A bucket is kept once it ended this long ago: the daemon journals a move when its loop
# flushes, a moment after the move's own time (longer while the journal's disk is slow).
SETTLED_S = 60.0


@dataclass(frozen=True)
class Period:
    name: str
    span_s: int
    bucket_s: int
    label: str  # strftime format of a bucket's start

    @property
    def buckets(self) -> int:
        return self.span_s // self.bucket_s


PERIODS = {p.name: p for p in (
    Period("hour", 3600, 60, "%H:%M"),
    Period("day", 86400, 1800, "%H:%M"),
    Period("week", 7 * 86400, 3 * 3600, "%a %H:%M"),
)}  # fmt: skip

Counts = dict[tuple[str, "str | None"], int]  # (state, route) -> files


class History:
    """The counts of ended buckets, kept per journal generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._closed: dict[tuple[int, float], Counts] = {}

    def counts(
        self, conn: sqlite3.Connection, generation: int, period: Period, now: float
    ) -> list[tuple[float, Counts]]:
        """(bucket start, counts) for each bucket of `period` ending at `now`, oldest first."""
        size = period.bucket_s
        first = (math.floor(now / size) - period.buckets + 1) * size
        with self._lock:
            if generation != self._generation:
                self._closed.clear()
                self._generation = generation
            known = {start: self._closed.get((size, start)) for start in
                     (first + i * size for i in range(period.buckets))}  # fmt: skip
        routes = {state: queries.finished_routes(conn, state) for state in queries.FINISHED}
        out: list[tuple[float, Counts]] = []
        fresh: dict[tuple[int, float], Counts] = {}
        for start, counts in known.items():
            if counts is None:
                counts = {}
                for state, names in routes.items():
                    for route in names:
                        n = queries.finished_count(conn, state, route, start, start + size)
                        if n:
                            counts[(state, route)] = n
                if start + size <= now - SETTLED_S:
                    fresh[(size, start)] = counts
            out.append((start, counts))
        with self._lock:
            if generation == self._generation:
                self._closed.update(fresh)
                for key in [k for k in self._closed if k[0] == size and k[1] < first]:
                    del self._closed[key]
        return out


def build(dash: Dashboard, name: str, route: str | None) -> dict[str, Any]:
    """The History page's (and `/api/history`'s) data; ValueError for an unknown period.
    Queries the journal: call it in a worker thread."""
    period = PERIODS.get(name)
    if period is None:
        raise ValueError(f"unknown period {name!r} (one of {', '.join(PERIODS)})")
    t0 = time.perf_counter()
    now = time.time()
    generation = dash.api.snapshot.journal_generation
    buckets = dash.history.counts(dash.reader.conn(), generation, period, now)
    by_route: dict[str | None, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    totals = {"processed": 0, "failed": 0}
    for start, counts in buckets:
        done = {"processed": 0, "failed": 0}
        for (state, r), n in counts.items():
            by_route.setdefault(r, {"processed": 0, "failed": 0})[state] += n
            if route is None or r == route:
                done[state] += n
                totals[state] += n
        rows.append({"start": start, "end": start + period.bucket_s, **done})
    ordered = sorted(by_route.items(), key=lambda rc: (
        -(rc[1]["processed"] + rc[1]["failed"]), rc[0] is None, rc[0] or ""))  # fmt: skip
    routes = [{"route": r, **c, "failure_rate": _rate(c)} for r, c in ordered]
    return {
        "period": period.name,
        "periods": list(PERIODS),
        "span_s": period.span_s,
        "bucket_s": period.bucket_s,
        "route": route,
        "now": now,
        "buckets": rows,
        "totals": {**totals, "failure_rate": _rate(totals)},
        "routes": routes,
        "query_ms": round((time.perf_counter() - t0) * 1000, 2),
    }


def _rate(counts: dict[str, int]) -> float | None:
    done = counts["processed"] + counts["failed"]
    return counts["failed"] / done if done else None


def chart(buckets: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Bar geometry for an inline-SVG chart of `buckets` ({start, processed, failed}), one
    bar per bucket with the failed stacked on top, labelled by strftime `label`."""
    peak = max((b["processed"] + b["failed"] for b in buckets), default=0) or 1
    bar_w = CHART_W / max(len(buckets), 1)
    bars = []
    for i, b in enumerate(buckets):
        h_ok = b["processed"] / peak * CHART_H
        h_bad = b["failed"] / peak * CHART_H
        bars.append({
            "x": round(i * bar_w, 1), "w": round(max(bar_w - 1, 1), 1),
            "ok_y": round(CHART_H - h_ok, 1), "ok_h": round(h_ok, 1),
            "bad_y": round(CHART_H - h_ok - h_bad, 1), "bad_h": round(h_bad, 1),
            "label": time.strftime(label, time.localtime(b["start"])),
            "processed": b["processed"], "failed": b["failed"], "start": b["start"],
        })  # fmt: skip
    return {"bars": bars, "peak": peak, "width": CHART_W, "height": CHART_H}
