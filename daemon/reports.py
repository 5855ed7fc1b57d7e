"""A run's report: what became of the files a run (a `--drain`, a batch folder) finished.

`RunReport.add` takes each finished file's summary as it moves to processed/ or failed/;
`as_json()` is the report `--drain` prints at its end and a `notify` target that wants
`drain.done` (or `batch.done`, `daemon.batches`) receives: files processed, failed (each
with its reason, the first MAX_LISTED), skipped as duplicates, seconds and bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from daemon.summary import Summary, iso
from formats.names import as_text, shown

MAX_LISTED = 1000  # failures listed by name; the count is always whole


@dataclass
class RunReport:
    started: float = field(default_factory=time.time)
    processed: int = 0
    failed: int = 0
    duplicates: int = 0
    bytes: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # error type -> files

    def add(self, summary: Summary) -> None:
        """A file finished (its summary, as committed)."""
        self.count(summary.status.value, summary.uid, shown(summary.source), summary.size,
                   summary.error, duplicate=summary.duplicate_of is not None)  # fmt: skip

    def count(
        self,
        status: str,
        uid: str | None,
        path: str | None,
        size: int | None,
        error: dict[str, Any] | None,
        *,
        duplicate: bool = False,
    ) -> None:
        """A file finished `status` (processed or failed); `path` as shown."""
        self.bytes += size or 0
        if status == "processed":
            self.processed += 1
            self.duplicates += duplicate
            return
        self.failed += 1
        error = error or {}
        kind = str(error.get("type") or "Error")
        self.reasons[kind] = self.reasons.get(kind, 0) + 1
        if len(self.failures) < MAX_LISTED:
            self.failures.append({
                "uid": uid, "path": path,
                "error": {"type": kind, "message": as_text(str(error.get("message") or ""))},
            })  # fmt: skip

    def as_json(self, kind: str, finished: float | None = None, **extra: Any) -> dict[str, Any]:
        finished = time.time() if finished is None else finished
        return {
            "kind": kind,
            **extra,
            "processed": self.processed,
            "failed": self.failed,
            "skipped_duplicates": self.duplicates,
            "files": self.processed + self.failed,
            "bytes": self.bytes,
            "seconds": round(finished - self.started, 3),
            "started": iso(self.started),
            "finished": iso(finished),
            "failure_reasons": dict(self.reasons),
            "failures": list(self.failures),
            "failures_listed": len(self.failures),
        }
