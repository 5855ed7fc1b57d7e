"""What the dashboard sees of a source: a frozen view the loop puts in its snapshot."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from formats.names import as_text, shown

if TYPE_CHECKING:
    from daemon.sources.runtime import Runtime

RATE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    path: str
    adhoc: bool
    watcher: str | None  # inotify, polling (by rescans), or None (an ad-hoc source)
    error: str | None
    counts: dict[str, tuple[int, int]]  # state -> (files, bytes)
    files_per_s: float  # over the last minute
    bytes_per_s: float
    errors: tuple[tuple[float, str, str], ...]  # (wall time, path, message), newest last
    last_scan: dict[str, Any] | None
    scanning: bool
    finalised: int
    after: str
    results: str

    @classmethod
    def of(cls, rt: Runtime, now: float, scanning: bool) -> SourceView:
        while rt.done and rt.done[0][0] < now - RATE_WINDOW_S:
            rt.done.popleft()
        span = min(RATE_WINDOW_S, max(now - rt.done[0][0], 1.0)) if rt.done else RATE_WINDOW_S
        kind = None if rt.config.adhoc else "inotify" if rt.watcher is not None else "polling"
        return cls(
            rt.name, rt.root, rt.config.adhoc, kind, rt.error,
            {k: (v[0], v[1]) for k, v in rt.counts.items() if v[0]},
            round(len(rt.done) / span, 3), round(sum(b for _, b in rt.done) / span, 1),
            tuple(rt.errors), rt.last_scan, scanning, rt.finalised, rt.config.after,
            rt.config.results_prefix,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        files = {state: n for state, (n, _) in self.counts.items()}
        scan = self.last_scan
        if scan is not None and scan.get("error"):
            scan = {**scan, "error": as_text(scan["error"])}
        return {  # names as shown(): a source's folder or files need not be UTF-8
            "name": self.name, "path": shown(self.path), "adhoc": self.adhoc,
            "watcher": self.watcher, "error": as_text(self.error) if self.error else None,
            "files": files,
            "bytes": {state: b for state, (_, b) in self.counts.items()},
            "total_files": sum(files.values()),
            "rate": {"files_per_s": self.files_per_s, "bytes_per_s": self.bytes_per_s},
            "last_errors": [
                {"at": at, "path": shown(path), "error": as_text(message)}
                for at, path, message in reversed(self.errors)
            ],
            "last_scan": scan, "scanning": self.scanning,
            "finalised": self.finalised, "after": self.after, "results": self.results,
            "as_of": time.time(),
        }  # fmt: skip
