"""Live rates for the pipeline graph: lines per second over the last `WINDOW_S` seconds.

Workers report each running file's counts so far (lines per tag, each node's lines and
busy seconds) with their progress messages, about twice a second, and the final counts
with `file_processed`. Counts are cumulative per file, so each report adds only what grew
since the last one seen for that file to the current one-second bucket: a big file moves
the rates while it runs, and a file reported at its end is never counted twice.

Keys are flat strings: `tag:<t>` lines reaching tag t, `in:<node>` and `out:<node>` a
node's lines, `busy:<node>` its busy seconds, `done:<t>` lines of output t in files that
finished (what sinks took: delivery is part of the commit), `done:input` the files.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

WINDOW_S = 10
MAX_RUNNING = 10_000  # attempts remembered; one whose end never came is dropped first
_NODE_KEYS = (("lines_in", "in"), ("lines_out", "out"), ("seconds", "busy"))


def flat(tags: dict[str, int] | None, processors: dict[str, Any] | None) -> Counter[str]:
    """One file's counts under the flat keys."""
    out: Counter[str] = Counter()
    for tag, n in (tags or {}).items():
        out[f"tag:{tag}"] = n
    for name, stats in (processors or {}).items():
        for field, key in _NODE_KEYS:
            out[f"{key}:{name}"] = stats.get(field) or 0
        for tag, n in (stats.get("to") or {}).items():
            out[f"edge:{name}>{tag}"] = n
    return out


class Rates:
    """Times are monotonic (events' `mono`): a rate is a duration's, and the wall clock
    may step back (NTP, a VM restore), which would strand every bucket in the future."""

    def __init__(self, window_s: int = WINDOW_S) -> None:
        self.window_s = window_s
        self._buckets: deque[tuple[int, Counter[str]]] = deque()  # (second, counts) oldest first
        self._seen: dict[str, Counter[str]] = {}  # uid -> counts of its running attempt so far
        self.errors: Counter[str] = Counter()  # node -> files it failed, since start

    def started(self, uid: str) -> None:
        """A new attempt counts from zero."""
        self._seen[uid] = Counter()

    def progress(self, uid: str, ts: float, counts: Counter[str]) -> None:
        seen = self._seen.setdefault(uid, Counter())
        grew = {k: v - seen[k] for k, v in counts.items() if v > seen[k]}
        if grew:
            self._add(ts, grew)
        self._seen[uid] = counts
        if len(self._seen) > MAX_RUNNING:  # an attempt that vanished or was held
            self._seen.pop(next(iter(self._seen)))

    def finished(self, uid: str, ts: float, counts: Counter[str] | None, node: str | None) -> None:
        """The end of an attempt: what its last counts add, and the node it failed at."""
        if counts is not None:
            self.progress(uid, ts, counts)
            done = {f"done:{k[4:]}": v for k, v in counts.items() if k.startswith("tag:") and v}
            done["done:input"] = 1  # the file itself (what a `deliver` sink took)
            self._add(ts, done)
        if node:
            self.errors[node] += 1
        self._seen.pop(uid, None)

    def _add(self, ts: float, counts: Mapping[str, float]) -> None:
        second = int(ts)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1].update(counts)
        elif self._buckets and self._buckets[-1][0] > second:  # late: into its own bucket
            for sec, bucket in reversed(self._buckets):
                if sec <= second:
                    bucket.update(counts)
                    break
        else:
            self._buckets.append((second, Counter(counts)))
        self._prune(second)

    def _prune(self, now_s: int) -> None:
        while self._buckets and self._buckets[0][0] <= now_s - self.window_s:
            self._buckets.popleft()

    def per_second(self, now: float | None = None) -> dict[str, float]:
        """Each key's total over the last `window_s` seconds, divided by `window_s`. Safe
        from a view's thread: it copies (each copy atomic) and never prunes."""
        since = int(time.monotonic() if now is None else now) - self.window_s
        total: Counter[str] = Counter()
        for second, bucket in list(self._buckets):
            if second > since:
                total.update(dict(bucket))
        return {k: v / self.window_s for k, v in total.items() if v}
