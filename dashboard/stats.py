"""What the dashboard adds up from the daemon's events since it started.

Throughput per minute over the last hour, recent processing times (p50/p95), per-node
line counts and time, lines per tag, the live rates of the pipeline graph
(`dashboard.rates`), and the files waiting in unprocessed/ that the
journal does not know yet (it records a file when it is claimed). Updated on the
dashboard's event loop in batches; read by the pages, the API and /metrics. The chart and
the percentiles are seeded from the journal at start-up, so a restart does not blank them.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from daemon.states import State
from dashboard.rates import Rates, flat

WINDOW_MIN = 60
MAX_WAITING = 50_000
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


class Stats:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.minutes: dict[int, list[int]] = {}  # minute (epoch // 60) -> [processed, failed]
        self.durations: deque[float] = deque(maxlen=2000)
        self.nodes: dict[str, dict[str, float]] = {}
        self.tags: Counter[str] = Counter()
        self.files_seen = 0
        self.rates = Rates()
        # Files settled in unprocessed/ and not yet started: path -> (time queued, priority).
        self.waiting: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._sorted: list[float] | None = None
        self.histogram = Histogram(
            "folderd_processing_duration_seconds",
            "Time from a worker starting a file to its result (processed or failed)",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    # -- input ----------------------------------------------------------------------
    def seed(self, rows: Iterable[tuple[str, float, float | None]]) -> None:
        for state, updated, duration in rows:
            self._count(updated, state == State.PROCESSED)
            if state == State.PROCESSED and duration is not None:
                self.durations.append(duration)
        self._sorted = None

    def apply(self, events: Iterable[dict[str, Any]]) -> None:
        for ev in events:
            kind = ev["kind"]
            if kind == "file_queued":
                self.waiting[ev["path"]] = (ev["ts"], ev.get("priority", 0))
                while len(self.waiting) > MAX_WAITING:
                    self.waiting.popitem(last=False)
            elif kind == "file_unqueued":  # claimed, cancelled, or a peer's claim won
                self.waiting.pop(ev["path"], None)
            elif kind == "file_started":
                self.rates.started(ev["uid"])
            elif kind == "file_progress":
                if ev.get("processors") is not None:
                    self.rates.progress(ev["uid"], ev["mono"], flat(ev["tags"], ev["processors"]))
            elif kind == "file_processed":
                self._finished(ev, ok=True)
                counts = flat(ev.get("tags"), ev.get("processors"))
                self.rates.finished(ev["uid"], ev["mono"], counts, None)
            elif kind == "file_failed":
                self.waiting.pop(ev["path"], None)
                self._finished(ev, ok=False)
                self.rates.finished(ev["uid"], ev["mono"], None, ev.get("node"))
            elif kind == "file_retry":
                self.rates.finished(ev["uid"], ev["mono"], None, None)

    def _finished(self, ev: dict[str, Any], ok: bool) -> None:
        self._count(ev["ts"], ok)
        duration = ev.get("duration_s")
        if duration is not None:
            self.histogram.observe(duration)
            if ok:
                self.durations.append(duration)
                self._sorted = None
        if not ok:
            return
        self.files_seen += 1
        for tag, n in (ev.get("tags") or {}).items():
            self.tags[tag] += n  # exported as folderd_lines_total{tag} by metrics.py
        for name, node in (ev.get("processors") or {}).items():
            agg = self.nodes.setdefault(
                name, {"lines_in": 0, "lines_out": 0, "errors": 0, "seconds": 0.0, "files": 0}
            )
            for key in ("lines_in", "lines_out", "errors", "seconds"):
                agg[key] += node.get(key) or 0
            agg["files"] += 1

    def _count(self, ts: float, ok: bool) -> None:
        minute = int(ts // 60)
        self.minutes.setdefault(minute, [0, 0])[0 if ok else 1] += 1
        if len(self.minutes) > WINDOW_MIN + 5:
            oldest = int(time.time() // 60) - WINDOW_MIN
            for m in [m for m in self.minutes if m <= oldest]:
                del self.minutes[m]

    # -- output ---------------------------------------------------------------------
    def throughput(self, now: float | None = None) -> list[dict[str, Any]]:
        """The last hour, one entry per minute, oldest first."""
        current = int((now or time.time()) // 60)
        out = []
        for m in range(current - WINDOW_MIN + 1, current + 1):
            processed, failed = self.minutes.get(m, (0, 0))
            out.append({"minute": m * 60, "processed": processed, "failed": failed})
        return out

    def summary(self) -> dict[str, Any]:
        hour = self.throughput()
        processed = sum(b["processed"] for b in hour)
        failed = sum(b["failed"] for b in hour)
        if self._sorted is None:
            self._sorted = sorted(self.durations)
        return {
            "last_hour": {"processed": processed, "failed": failed},
            "success_rate": processed / (processed + failed) if processed + failed else None,
            "duration_p50_s": percentile(self._sorted, 50),
            "duration_p95_s": percentile(self._sorted, 95),
            "duration_samples": len(self._sorted),
        }
