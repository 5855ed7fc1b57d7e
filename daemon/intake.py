"""Files waiting in unprocessed/: seen (watcher events, scans), settling, then settled.

Settled files wait in arrival order until a worker is free; only then are they claimed,
so underprocess/ holds what is being worked on, not the whole backlog. `inspect()` says
why a complete file must not be processed at all (FIFOs, devices, symlinks leading out of
watch_dir, mtime 0, empty files): those go straight to failed/ with that reason.
"""

from __future__ import annotations

import contextlib
import fnmatch
import heapq
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import structlog

from config.markers import MarkersConfig
from config.pipeline import PriorityRule
from daemon.markers import Gate, Released
from daemon.recovery import walk_files
from daemon.settle import Settler, Signature, signature
from daemon.states import UPLOAD_DIRNAME
from daemon.watcher import Ignored

log = structlog.get_logger(__name__)

OWN_PREFIX = UPLOAD_DIRNAME  # folderd's own staging folders inside unprocessed/ (one per instance)
STUCK_SHOWN = 100

_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFDIR: "directory",
}


class Settled(NamedTuple):
    """A file that settled, to claim next: its path and what it was when it settled."""

    path: str
    sig: Signature


class Intake:
    def __init__(
        self,
        queue_dir: str,
        settle_s: float,
        ignored: Ignored,
        on_settled: Callable[[str, int], None] | None = None,
        priority: Sequence[PriorityRule] = (),
        on_left: Callable[[str], None] | None = None,
    ) -> None:
        self.queue_dir = queue_dir
        self.settle_s = settle_s
        self.settler = Settler(settle_s)
        self._ignored = ignored
        self._on_settled = on_settled
        self._on_left = on_left  # a settled file left the waiting list (claimed or not)
        self.rules = tuple(priority)
        # settled files by claim order: a heap of (-priority, arrival, path, signature); an
        # entry counts only while _settled_set maps its path to its arrival (lazy removal)
        self._settled: list[tuple[int, int, str, Signature]] = []
        self._settled_set: dict[str, int] = {}
        self._arrivals = 0
        self._vacated: set[str] = set()  # sub-folders files were claimed from
        # Files in unprocessed/ that are never claimed, and why (for the dashboard): ignored
        # names as the last full scan found them, and files whose claim failed.
        self._ignored_found: dict[str, str] = {}
        self._unclaimable: dict[str, str] = {}
        self._stuck: tuple[tuple[str, str], ...] | None = ()  # None: to be recomputed
        self.gate: Gate | None = None  # ready markers and batch folders (daemon.markers)

    def __len__(self) -> int:
        return len(self.settler) + len(self._settled_set)

    @property
    def has_settled(self) -> bool:
        return bool(self._settled_set)

    def ignored(self, rel: str) -> str | None:
        """Why `rel` (relative to unprocessed/) is never claimed (hidden or ignored), or None."""
        return self._ignored(rel)

    def stuck(self) -> tuple[tuple[str, str], ...]:
        """(name, why) of files in unprocessed/ that are not claimed as they are (the first
        STUCK_SHOWN by name)."""
        if self._stuck is None:
            merged = {**self._ignored_found, **self._unclaimable}
            self._stuck = tuple(sorted(merged.items())[:STUCK_SHOWN])
        return self._stuck

    def claim_failed(self, rel: str, why: str | None) -> None:
        """Record (or, with None, clear) why the file `rel` could not be claimed."""
        if why is not None:
            self._unclaimable[rel] = why
        elif self._unclaimable.pop(rel, None) is None:
            return
        self._stuck = None

    def rel(self, path: str) -> str:
        return path[len(self.queue_dir) + 1 :]

    def next_deadline(self) -> float | None:
        return self.settler.next_deadline()

    def oldest(self) -> float | None:
        return self.settler.oldest()

    def seen(self, path: str, now: float, closed: bool = False, renamed: bool = False) -> None:
        """The watcher says something changed at `path` (`closed`: a writer closed it;
        `renamed`: it was renamed in, complete, a directory with everything in it)."""
        if path in self._settled_set:
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.settler.forget(path)
            return
        if stat.S_ISDIR(st.st_mode):
            self.scan(path, renamed=renamed)
        elif self.gate is not None and self.gate.active and self.gate.is_marker(path):
            self._admit(self.gate.marker_seen(path))  # a marker is never an input
        else:
            self.settler.touch(path, now, signature(st), closed, renamed)

    def gone(self, path: str) -> None:
        self.settler.forget(path)
        if self.gate is not None:
            self.gate.forget(path)

    def claimed(self, path: str, uid: str) -> None:
        """`path` was claimed as `uid` (its marker is consumed, its batch told)."""
        if self.gate is not None:
            self.gate.claimed(path, uid)

    def use_markers(self, config: MarkersConfig) -> None:
        """The markers of a config just loaded: held files it no longer holds go on."""
        if self.gate is not None:
            self.gate.config = config
            self._admit(self.gate.release())

    def check_markers(self) -> None:
        """Once a tick: files whose marker came without an event go on."""
        if self.gate is not None and self.gate.active:
            self._admit(self.gate.tick())

    def _admit(self, released: list[Released]) -> None:
        for path, sig, priority in released:
            self._push(path, sig, priority)

    def scan(self, top: str, renamed: bool = False) -> None:
        """Find files the watcher did not report (start-up, new dirs, rescans). A full scan
        also lists the ignored files and removes sub-folders its claims left empty."""
        now = time.monotonic()
        full = top == self.queue_dir
        found = 0
        ignored: dict[str, str] = {}
        markers: list[str] = []
        gate = self.gate if self.gate is not None and self.gate.active else None
        for rel in walk_files(Path(top)):
            path = os.path.join(top, rel)
            if path in self.settler or path in self._settled_set:
                continue
            queued_rel = self.rel(path)
            if why := self._ignored(queued_rel):
                if not queued_rel.startswith(OWN_PREFIX):
                    ignored[queued_rel] = why
                continue
            if gate is not None and gate.is_marker(path):
                markers.append(path)
                continue
            with contextlib.suppress(FileNotFoundError):
                self.settler.touch(path, now, signature(os.lstat(path)), renamed=renamed)
                found += 1
        if ignored or full:
            self._stuck = None
        if full:
            self._ignored_found = ignored
            self._unclaimable = {r: w for r, w in self._unclaimable.items()
                                 if os.path.lexists(os.path.join(top, r))}  # fmt: skip
            prune_vacated(top, self._vacated, self.settle_s)
        else:
            self._ignored_found.update(ignored)
        for marker in markers:  # once the files are known: a batch takes what is there
            self._admit(gate.marker_seen(marker) if gate is not None else [])
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
                priority = priority_of(self.rules, self.rel(path)) if self.rules else 0
                if (
                    self.gate is not None
                    and self.gate.active
                    and self.gate.hold(path, sig, priority)
                ):
                    continue  # settled, but waits for its marker (daemon.markers)
                self._push(path, sig, priority)

    def _push(self, path: str, sig: Signature, priority: int) -> None:
        """A settled file joins the claim queue."""
        self._arrivals += 1
        heapq.heappush(self._settled, (-priority, self._arrivals, path, sig))
        self._settled_set[path] = self._arrivals
        if self._on_settled is not None:
            self._on_settled(path, priority)

    def pop(self) -> Settled | None:
        """The settled file to claim next (highest priority, then first settled), or None."""
        while self._settled:
            _, arrival, path, sig = heapq.heappop(self._settled)
            if self._settled_set.get(path) == arrival:
                del self._settled_set[path]
                if self._on_left is not None:
                    self._on_left(path)
                if (parent := os.path.dirname(path)) != self.queue_dir:
                    self._vacated.add(parent)
                return Settled(path, sig)
        return None

    def resettle(self, path: str, sig: Signature) -> None:
        """It changed while waiting for a worker: settle it again."""
        self.settler.touch(path, time.monotonic(), sig)

    def remove(self, path: str) -> None:
        """Stop tracking `path`, wherever it is in intake (it is being cancelled)."""
        self.settler.forget(path)
        if self.gate is not None:
            self.gate.forget(path)
        if self._settled_set.pop(path, None) is not None and self._on_left is not None:
            self._on_left(path)  # its heap entry is skipped when it comes up


def priority_of(rules: Sequence[PriorityRule], rel: str) -> int:
    """The priority of the waiting file `rel` (relative to unprocessed/): the first rule
    that matches it gives it; 0 when none does."""
    folder, _, _ = rel.partition("/") if "/" in rel else ("", "", "")
    name = rel.rpartition("/")[2]
    for rule in rules:
        if rule.folder is not None and rule.folder != folder:
            continue
        if rule.glob is not None and not fnmatch.fnmatchcase(name, rule.glob):
            continue
        if rule.regex is not None:
            m = rule.regex.search(rel)
            if m is None:
                continue
            group = m.groupdict().get("priority")
            if group is not None and group.lstrip("-").isdigit():
                return int(group)
        return rule.priority
    return 0


def prune_vacated(top: str, vacated: set[str], idle_s: float) -> None:
    """Remove the sub-folders of `top` in `vacated` (folders files were claimed from) that
    are now empty and untouched for `idle_s`, and the parents that leaves empty: each costs
    an inotify watch. A folder nothing was claimed from (a drop target made in advance) is
    kept; a writer that just made one (rsync -r) has touched it within the window; rmdir
    itself refuses a folder that is not empty. Folders still busy stay in `vacated`."""
    cutoff = time.time() - max(idle_s, 1.0)
    for d in sorted(vacated, key=len, reverse=True):  # the deepest first
        ours = False  # a parent's mtime is ours once we removed a folder from it
        while d != top and d.startswith(top + os.sep):
            try:
                if not ours and os.lstat(d).st_mtime >= cutoff:
                    break  # touched within the window: look again at the next full scan
                os.rmdir(d)
            except OSError:  # not empty (files left, or more came), or gone already
                vacated.discard(d)
                break
            vacated.discard(d)
            log.debug("empty_folder_removed", path=d)
            d, ours = os.path.dirname(d), True


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
