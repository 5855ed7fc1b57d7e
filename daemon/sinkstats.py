"""Per-sink tallies for `/health` and `/metrics`, from the summaries the workers send back.

A worker delivers and reports each delivery in the file's summary (`deliveries`), or
names the sink in the summary's `error` when one failed it. The loop hands every outcome's
summary to `observe`; `view` gives the snapshot one frozen record per configured sink
(rebuilt only when something changed, so a step costs a comparison).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

from config.pipeline import PipelineConfig
from config.sinks import SinkConfig
from daemon.summary import Summary

# delivery seconds: the histogram's upper bounds (+Inf is the last bucket)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ERROR_KINDS = ("unavailable", "transient", "data")  # the machine's, this attempt's, a record's


@dataclass(frozen=True, slots=True)
class SinkHealth:
    name: str  # where it was declared: "outputs.rows", "deliver[0]"
    type: str
    location: str  # redacted
    deliveries: int
    already: int  # skip_existing found the same bytes there
    rows: int
    bytes: int
    errors: tuple[int, ...]  # by ERROR_KINDS
    seconds_sum: float
    buckets: tuple[int, ...]  # per bound of BUCKETS, then +Inf (not cumulative)
    last_ok: float | None  # monotonic (only ages are shown: a wall clock may step back)
    last_error: str | None  # the sink's own last failure (a record's type error is not one)
    last_error_at: float | None  # monotonic

    @property
    def ok(self) -> bool:
        """Its last word was a success, or it never failed."""
        return self.last_error_at is None or (
            self.last_ok is not None and self.last_ok > self.last_error_at
        )

    def as_dict(self, now: float) -> dict[str, Any]:
        def age(ts: float | None) -> float | None:
            return None if ts is None else round(max(0.0, now - ts), 3)

        return {
            "name": self.name, "type": self.type, "location": self.location, "ok": self.ok,
            "deliveries": self.deliveries, "already_delivered": self.already,
            "rows": self.rows, "bytes": self.bytes,
            "errors": dict(zip(ERROR_KINDS, self.errors, strict=True)),
            "seconds_sum": round(self.seconds_sum, 6), "buckets": list(self.buckets),
            "last_ok_age_s": age(self.last_ok), "last_error": self.last_error,
            "last_error_age_s": age(self.last_error_at),
        }  # fmt: skip


@dataclass
class _Tally:
    deliveries: int = 0
    already: int = 0
    rows: int = 0
    bytes: int = 0
    errors: list[int] = field(default_factory=lambda: [0] * len(ERROR_KINDS))
    seconds_sum: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None


class SinkStats:
    """Loop thread only."""

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._changed = True
        self._view: tuple[SinkHealth, ...] = ()
        self._config: PipelineConfig | None = None

    def observe(self, summary: Summary) -> None:
        deliveries = summary.deliveries or ()
        error = summary.error or {}
        if not deliveries and "sink" not in error:
            return
        now = time.monotonic()
        for d in deliveries:
            t = self._tally(d["sink"])
            t.deliveries += 1
            t.already += bool(d.get("already_delivered"))
            t.rows += d.get("rows") or 0
            t.bytes += d.get("bytes") or 0
            seconds = float(d.get("seconds") or 0.0)
            t.seconds_sum += seconds
            t.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
            t.last_ok = now
        if "sink" in error:
            t = self._tally(error["sink"])
            if error.get("type") == "SinkTypeError":
                t.errors[2] += 1
            else:
                t.errors[0 if error.get("cause") == "sink_unavailable" else 1] += 1
                t.last_error, t.last_error_at = str(error.get("message") or "error"), now
        self._changed = True

    def view(self, config: PipelineConfig) -> tuple[SinkHealth, ...]:
        """One record per sink of `config` (tallies are kept by name across reloads)."""
        if self._changed or config is not self._config:
            self._view = tuple(self._health(c) for c in config.sinks)
            self._config, self._changed = config, False
        return self._view

    def _tally(self, name: str) -> _Tally:
        t = self._tallies.get(name)
        if t is None:
            t = self._tallies[name] = _Tally()
        return t

    def _health(self, config: SinkConfig) -> SinkHealth:
        t = self._tallies.get(config.name) or _Tally()
        return SinkHealth(
            config.name, config.type, config.describe(), t.deliveries, t.already, t.rows,
            t.bytes, tuple(t.errors), t.seconds_sum, tuple(t.buckets), t.last_ok,
            t.last_error, t.last_error_at,
        )  # fmt: skip
