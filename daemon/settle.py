"""Deciding when a file in unprocessed/ is complete: it stopped changing for a window.

A file is ready once its (size, mtime, ctime, inode) has not changed for `settle_s`
seconds of monotonic time. Every watcher event about it restarts the window (so a file
appended every 100 ms is never ready mid-write), and the window is measured from the last
change the daemon saw, not from the file's mtime: `cp -p` and `rsync -t` set old mtimes,
so an old mtime says nothing about whether the writer is done. Files found by a scan
(no event at all: a rename-in, the polling observer, a lost event) take the same window.

A close-after-write event halves the window for that file: a writer that closed its file
(`cp`, an upload, an editor's save) is usually done, so the file is claimed sooner; any
later write restores the full window, so a writer that reopens the file to append is
still never claimed mid-stream as long as it appends more often than every settle/2.

A rename into the folder is the writer saying "complete" (rsync's last step, `mv`, "write
a temp name, then rename"): such a file only waits RENAME_CHECK_S, one quick re-stat to be
sure nothing still writes to it; a write event after the rename restores the full window.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


AFTER_CLOSE = 0.5  # the window after a close-after-write event, as a fraction of settle_s
RENAME_CHECK_S = 0.005  # the wait of a file renamed in: long enough for a re-stat to differ


@dataclass
class _Pending:
    sig: Signature | None
    changed: float  # monotonic time of the last change seen
    deadline: float
    first_seen: float


class Settler:
    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._pending: dict[str, _Pending] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: str) -> bool:
        return path in self._pending

    def oldest(self) -> float | None:
        """Monotonic time the longest-waiting pending file was first seen."""
        return min((p.first_seen for p in self._pending.values()), default=None)

    def touch(
        self,
        path: str,
        now: float,
        sig: Signature | None,
        closed: bool = False,
        renamed: bool = False,
    ) -> None:
        """Something about `path` changed (or it was just found): restart its window.

        `closed`: the change was a close-after-write, so the window is shorter; `renamed`:
        it was renamed in, complete, so it only waits for one quick re-stat.
        """
        p = self._pending.get(path)
        if renamed:
            window = min(RENAME_CHECK_S, self.settle_s)
        else:
            window = self.settle_s * AFTER_CLOSE if closed else self.settle_s
        deadline = now + window
        if p is None:
            self._pending[path] = _Pending(sig, now, deadline, now)
        else:
            p.sig, p.changed, p.deadline = sig, now, deadline
        heapq.heappush(self._heap, (deadline, path))

    def forget(self, path: str) -> None:
        self._pending.pop(path, None)

    def next_deadline(self) -> float | None:
        while self._heap:
            deadline, path = self._heap[0]
            p = self._pending.get(path)
            if p is not None and p.deadline == deadline:
                return deadline
            heapq.heappop(self._heap)  # stale entry
        return None

    def due(self, now: float) -> list[str]:
        """Paths whose window has passed; the caller checks them with `check()`."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            deadline, path = heapq.heappop(self._heap)
            p = self._pending.get(path)
            if p is not None and p.deadline == deadline:
                out.append(path)
        return out

    def check(self, path: str, now: float, sig: Signature) -> bool:
        """True (and forgotten) if `sig` is what the window started with; else restart it."""
        p = self._pending.get(path)
        if p is None:
            return False
        if p.sig == sig and now >= p.deadline:
            del self._pending[path]
            return True
        if p.sig != sig:  # changed without an event we saw: the full window again
            self.touch(path, now, sig)
        else:  # checked before its deadline: keep waiting for the same one
            heapq.heappush(self._heap, (p.deadline, path))
        return False
