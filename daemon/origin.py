"""Where a file processed in place came from: its source, its path there and its version.

A file of a source (`daemon.sources`) is never moved; what identifies one processing of
it is the version: its metadata at the settled moment it was claimed (and its content's
hash, for a source whose metadata cannot be trusted). The worker writes it into the file's
summary as `origin`, so each result says which version of which file it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formats.names import shown


@dataclass(frozen=True, slots=True)
class Origin:
    """A source file's version, as one attempt at it processes it."""

    source: str  # the source's name
    path: str  # relative to the source's folder (a surrogateescape str: names are bytes)
    number: int  # 1 for the first version processed, 2 for the next…
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str | None = None  # a hashed source: the content's digest when the version was seen

    def as_json(self) -> dict[str, Any]:
        version: dict[str, Any] = {
            "number": self.number, "size": self.size, "mtime_ns": self.mtime_ns,
            "ctime_ns": self.ctime_ns, "inode": self.inode,
        }  # fmt: skip
        if self.sha256 is not None:
            version["sha256"] = self.sha256
        return {"source": self.source, "path": shown(self.path), "version": version}
