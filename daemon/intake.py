"""Files waiting in unprocessed/: seen (watcher events, scans), settling, then settled.

Settled files wait in arrival order until a worker is free; only then are they claimed,
so underprocess/ holds what is being worked on, not the whole backlog. `inspect()` says
why a complete file must not be processed at all (FIFOs, devices, symlinks leading out of
watch_dir, mtime 0, empty files): those go straight to failed/ with that reason.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import structlog

from daemon.recovery import walk_files
from daemon.settle import Settler, Signature, signature

log = structlog.get_logger(__name__)

_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "directory",
}


class Intake:
    def __init__(
        self,
        queue_dir: str,
        settle_s: float,
        ignored: Callable[[str], bool],
        on_settled: Callable[[str], None] | None = None,
    ) -> None:
        self.queue_dir = queue_dir
        self.settler = Settler(settle_s)
        self._ignored = ignored
        self._on_settled = on_settled
        self._settled: deque[tuple[str, Signature]] = deque()
        self._settled_set: set[str] = set()

    def __len__(self) -> int:
        return len(self.settler) + len(self._settled)

    @property
    def has_settled(self) -> bool:
        return bool(self._settled)

    def ignored(self, rel: str) -> bool:
        """Whether `rel` (relative to unprocessed/) is never claimed: hidden or ignored."""
        return self._ignored(rel)

    def rel(self, path: str) -> str:
        return path[len(self.queue_dir) + 1 :]

    def next_deadline(self) -> float | None:
        return self.settler.next_deadline()

    def oldest(self) -> float | None:
        return self.settler.oldest()

    def seen(self, path: str, now: float, closed: bool = False) -> None:
        """The watcher says something changed at `path` (`closed`: a writer closed it)."""
        if path in self._settled_set:
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.settler.forget(path)
            return
        if stat.S_ISDIR(st.st_mode):
            self.scan(path)
        else:
            self.settler.touch(path, now, signature(st), closed)

    def gone(self, path: str) -> None:
        self.settler.forget(path)

    def scan(self, top: str) -> None:
        """Find files the watcher did not report (start-up, new dirs, rescans)."""
        now = time.monotonic()
        found = 0
        for rel in walk_files(Path(top)):
            path = os.path.join(top, rel)
            if path in self.settler or path in self._settled_set or self._ignored(self.rel(path)):
                continue
            with contextlib.suppress(FileNotFoundError):
                self.settler.touch(path, now, signature(os.lstat(path)))
                found += 1
        if found:
            log.debug("scan_found", path=top, files=found)

    def settle_due(self, now: float) -> None:
        for path in self.settler.due(now):
            try:
                sig = signature(os.lstat(path))
            except FileNotFoundError:
                self.settler.forget(path)
                continue
            if self.settler.check(path, now, sig):
                self._settled.append((path, sig))
                self._settled_set.add(path)
                if self._on_settled is not None:
                    self._on_settled(path)

    def pop(self) -> tuple[str, Signature] | None:
        """The longest-settled file, or None."""
        if not self._settled:
            return None
        path, sig = self._settled.popleft()
        self._settled_set.discard(path)
        return path, sig

    def resettle(self, path: str, sig: Signature) -> None:
        """It changed while waiting for a worker: settle it again."""
        self.settler.touch(path, time.monotonic(), sig)

    def remove(self, path: str) -> None:
        """Stop tracking `path`, wherever it is in intake (it is being cancelled)."""
        self.settler.forget(path)
        if path in self._settled_set:
            self._settled_set.discard(path)
            self._settled = deque(item for item in self._settled if item[0] != path)


def inspect(
    path: str, st: os.stat_result, root: Path, zero_mtime: str, empty_files: str
) -> tuple[str | None, str | None]:
    """(why this file must not be processed, or None; the path to open instead of it)."""
    open_path = None
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not target.startswith(str(root) + os.sep):
            return f"symlink to {target}, outside watch_dir: not followed", None
        try:
            st = os.stat(target)
        except OSError as exc:
            return f"dangling symlink to {target} ({exc.strerror})", None
        open_path = target
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'special')})", None
    if st.st_mtime_ns == 0 and zero_mtime == "fail":
        reason = (
            "mtime is 0: suspected interrupted `rsync --partial` transfer "
            "(--zero-mtime accept processes such files)"
        )
        return reason, None
    if st.st_size == 0 and empty_files == "fail":
        return "empty file (0 bytes)", None
    return None, open_path
