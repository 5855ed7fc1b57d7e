"""A note, on local disk, of each multipart upload that was started and may not have ended.

A multipart upload that neither completes nor is aborted (its worker killed mid-upload, a
power cut) keeps its parts on the server, out of sight and never completed. Rather than
list every key's unfinished uploads before every upload (a request per file that almost
always finds nothing), the S3 sink writes a note, synced, before it creates a multipart
upload, and removes it once that upload is completed or aborted: only a key with a note
left over has its unfinished uploads listed and aborted. A single PUT leaves nothing
unfinished and writes no note.

A note is a file in a folder the caller names (the daemon's: `results/.folderd-multipart/`),
named by a digest of the endpoint, bucket and key and a token of its own (two uploads of
one key at once each have theirs); its text says what it is for.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
from pathlib import Path

_tokens = itertools.count(1)


class Unfinished:
    """The notes in `folder` for one endpoint and bucket."""

    def __init__(self, folder: Path, endpoint: str, bucket: str) -> None:
        self.folder = folder
        self._endpoint, self._bucket = endpoint, bucket

    def _digest(self, key: str) -> str:
        where = f"{self._endpoint}\0{self._bucket}\0{key}".encode("utf-8", "surrogateescape")
        return hashlib.sha256(where).hexdigest()[:40]

    def _notes(self, key: str) -> list[str]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        digest = self._digest(key) + "."
        return [n for n in names if n.startswith(digest)]

    def may_have(self, key: str) -> bool:
        """A multipart upload of `key` was started and not seen to end."""
        return bool(self._notes(key))

    def started(self, key: str) -> str:
        """Before a multipart upload of `key` is created: a note, durable (neither a killed
        worker nor a power cut loses it); its name, for `ended`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self._digest(key)}.{os.getpid()}-{next(_tokens)}"
        shown = key.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        text = json.dumps({"endpoint": self._endpoint, "bucket": self._bucket, "key": shown})
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                     0o644)  # fmt: skip
        try:
            os.write(fd, text.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return name

    def ended(self, note: str) -> None:
        """The upload of note `note` is completed or aborted."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / note)

    def cleared(self, key: str) -> None:
        """Every unfinished upload of `key` was aborted: its notes go."""
        for note in self._notes(key):
            self.ended(note)
