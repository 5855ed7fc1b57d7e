"""Duplicate inputs (`--skip-duplicates`): bytes already processed are not processed again.

The main loop asks the journal which processed inputs have the size of the file it is
about to start (`Duplicates.earlier`, an indexed query) and sends them with the job. Only
when there are some does the worker hash the file before running anything (`first_match`);
a match is committed as a summary alone — `duplicate_of` the first input's uid and where
its results are — and the input goes to processed/: no pipeline, no delivery. A file with
no processed twin of its size, the usual case, is hashed once, while the pipeline streams
it, as always. What "processed" means is the journal's: rebuilt after it was lost, it
knows every input whose summary is still in results/ (`daemon.recovery.rebuild`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from daemon.journal import Journal
from formats.names import shown

if TYPE_CHECKING:
    from hashlib import _Hash

CHUNK = 1 << 20


@dataclass(frozen=True)
class Earlier:
    """A processed input the next one might duplicate (picklable: it travels in a Job)."""

    sha256: str
    uid: str
    rel: str  # its name in processed/ (and of its results)
    outputs: tuple[str, ...]  # its result files, relative to results/, as summaries show them

    def pointer(self) -> dict[str, Any]:
        """What a duplicate's summary says of the first input."""
        return {
            "duplicate_of": self.uid,
            "first_results": {"source": shown(self.rel), "summary": f"{shown(self.rel)}.json",
                              "output_files": list(self.outputs)},
        }  # fmt: skip


class Duplicates:
    """The loop's side: what a file about to start might duplicate (nothing when off)."""

    def __init__(self, journal: Journal, enabled: bool) -> None:
        self.journal = journal
        self.enabled = enabled

    def earlier(self, size: int) -> tuple[Earlier, ...]:
        if not self.enabled or size <= 0:
            return ()
        return tuple(
            Earlier(sha, uid, rel, tuple(orjson.loads(outputs or "[]")))
            for sha, uid, rel, outputs in self.journal.processed_of_size(size)
        )


def first_match(raw: BinaryIO, earlier: tuple[Earlier, ...]) -> tuple[_Hash, int, Earlier | None]:
    """Hash `raw` to its end: (the hash, bytes read, the earlier input it duplicates or
    None). The caller rewinds to run the pipeline, reusing the hash."""
    sha, size = hashlib.sha256(), 0
    while chunk := raw.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    digest = sha.hexdigest()
    return sha, size, next((e for e in earlier if e.sha256 == digest), None)
