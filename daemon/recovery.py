"""Exclusivity and recovery: what runs before the daemon touches any file.

The lock is an `flock` on `watch_dir/.folderd/lock`: the kernel drops it when the holder
dies however it dies, so `kill -9` never leaves a stale lock. Recovery then removes temp
results of the dead run, reconciles the journal with the folders (they are the truth), and
hands back every file left in underprocess/ with the attempt it was on counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from daemon.errors import DaemonError
from daemon.journal import Journal, Row
from daemon.shared.lease import PeerLease
from daemon.shared.startup import live_shared, refuse_shared_start
from daemon.states import FileRef, Folders, State
from daemon.summary import Summary
from formats.names import shown

log = structlog.get_logger(__name__)


class WatchDirLock:
    def __init__(self, folders: Folders) -> None:
        self.path = folders.meta / "lock"
        self.root = folders.root
        self.folders = folders
        self._fd: int | None = None
        self._shared = False

    def acquire(self, shared: bool = False) -> None:
        """Exclusively, or (`shared`, for instances in shared mode) shared with the others:
        on one host the kernel then refuses whichever kind comes second."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DaemonError(self._held_by(holder, shared), exit_code=1) from None
        if not shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        self._shared = shared

    def _held_by(self, holder: str, shared: bool) -> str:
        if shared:
            return (f"a folderd without --shared (PID {holder or 'unknown'}) is running "
                    f"on {self.root}; stop it first, or run every daemon there with "
                    "--shared")  # fmt: skip
        if not holder and (peers := live_shared(self.folders)):
            return refuse_message(self.root, peers)
        return (f"another folderd (PID {holder or 'unknown'}) is already running on "
                f"{self.root}; stop it first, or give this one another --watch-dir")  # fmt: skip

    def release(self) -> None:
        if self._fd is not None:
            if not self._shared:  # the PID in it is ours
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def refuse_message(root: Path, peers: list[PeerLease]) -> str:
    names = ", ".join(p.describe() for p in peers)
    return (f"folderd instances in shared mode are running on {root}: {names}; start this "
            "one with --shared too, or stop them first")  # fmt: skip


def open_watch_dir(folders: Folders) -> tuple[WatchDirLock, Journal]:
    """Create the folders, take the lock, open the journal: the lock first, so a second
    daemon fails before it touches anything of the first's (the journal included). In
    shared mode (`folders.instance`) the lock is shared, and the start is refused on the
    grounds `daemon.shared.startup` names."""
    folders.create()
    lock = WatchDirLock(folders)
    lock.acquire(shared=bool(folders.instance))
    try:
        if folders.instance:
            refuse_shared_start(folders)
        elif peers := live_shared(folders):  # on other hosts: the lock did not see them
            raise DaemonError(refuse_message(folders.root, peers), exit_code=1)
        return lock, Journal(folders.journal)
    except BaseException:
        lock.release()
        raise


def walk_files(top: Path) -> list[str]:
    """Every non-directory entry below `top`, as paths relative to it, oldest dirs first."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, top)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        out.extend(prefix + name for name in sorted(filenames))
        # os.walk lists symlinks to directories under dirnames without descending: files too
        out.extend(prefix + d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
    return out


def remove_stale_temps(folders: Folders) -> int:
    """Temp results and half-received uploads of a dead run: never complete, never needed."""
    removed = 0
    uploads = folders.uploads
    entries = [*os.scandir(folders.tmp), *(os.scandir(uploads) if uploads.is_dir() else [])]
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed += 1
    return removed


def _locate(folders: Folders, rel: str) -> State | None:
    for state in (State.PROCESSED, State.FAILED, State.QUEUED):
        if os.path.lexists(folders.of(state) / rel):
            return state
    return None


def rebuild(folders: Folders, journal: Journal) -> int:
    """Rows for the files in processed/ and failed/ a new journal does not know, with their
    results from their summaries (whose uid ties them to the input); how many."""
    restored = 0
    for state in (State.PROCESSED, State.FAILED):
        top = folders.of(state)
        for rel in walk_files(top):
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(top / rel)
                s = _summary(folders, rel)
                if s is None:
                    ref = FileRef(uuid.uuid4().hex, rel, state, 0, rel, st.st_size, st.st_ino)
                else:
                    ref = FileRef(s.uid, rel, state, s.attempts, s.original_name or rel,
                                  st.st_size, st.st_ino)  # fmt: skip
                journal.restore(ref, s, (s.finished_ts if s is not None else 0) or st.st_mtime)
                restored += 1
    journal.fresh = False
    journal.flush()
    log.info("journal_rebuilt", files=restored)
    return restored


def _summary(folders: Folders, rel: str) -> Summary | None:
    """The summary at results/<rel>.json, if it is one of the input now called `rel`."""
    try:
        with open(folders.summary_path(rel), "rb") as f:
            data = orjson.loads(f.read())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(data, dict)
        and data.get("source") == shown(rel)
        and isinstance(data.get("uid"), str)
    )
    if not ok:
        return None
    try:
        return Summary.from_json(data)
    except (KeyError, TypeError, ValueError):  # not one folderd wrote
        return None


@dataclass(frozen=True, slots=True)
class Recovered:
    """A file a dead run left in underprocess/, with the summary its last attempt had
    already committed (then only its move is left to do), or None: it runs again."""

    ref: FileRef
    committed: Summary | None = None


def _committed(
    folders: Folders, journal: Journal, rel: str, row: Row | None, st: os.stat_result
) -> Summary | None:
    """The summary of the claim of `rel` in underprocess/ if its last attempt committed it:
    a final status, the size and sha256 of the bytes there now, and that attempt's own —
    with `row` (the claim's journal row), its uid and begun after the attempt was handed
    out, not an earlier claim's summary as a requeued file has. Without a row (the claim
    never reached the journal: killed within one of its commits), the summary's uid is
    taken unless the journal knows that input changed state after the attempt began (it
    was requeued or returned since)."""
    summary = _summary(folders, rel)
    if summary is None or summary.size != st.st_size or not stat.S_ISREG(st.st_mode):
        return None
    began = summary.started_ts
    if row is not None:
        if summary.uid != row.uid or row.started is None or began < row.started:
            return None
    elif (known := journal.get(summary.uid)) is not None and (known.updated or 0) > began:
        return None
    sha = hashlib.sha256()
    try:
        with open(folders.of(State.CLAIMED) / rel, "rb") as f:
            while chunk := f.read(1 << 20):
                sha.update(chunk)
    except OSError:
        return None
    return summary if sha.hexdigest() == summary.sha256 else None


def recover(
    folders: Folders,
    journal: Journal,
    identity: Callable[[os.stat_result], str] | None = None,
    reconciled: Callable[[Summary], None] | None = None,
) -> list[Recovered]:
    """Repair what a dead run left; return the files in underprocess/, each with its
    committed summary if its results were complete before the run died (they are moved on,
    not run again: their results and deliveries are not made twice).

    `identity` gives a file the journal lost its uid as its claim made it (`Identity.new_uid`
    in shared mode, `identity.single_uid` without: by inode, so that deliveries made under it
    are replaced when it runs again);
    `reconciled` is told the summary of each file found moved on although the journal did
    not say so (the run died between the move and the journal's commit: its notification,
    `daemon.outbox`, was never written either)."""
    temps = remove_stale_temps(folders)
    if journal.fresh:
        rebuild(folders, journal)
    on_disk = walk_files(folders.of(State.CLAIMED))
    present = set(on_disk)
    for known in journal.in_state(State.CLAIMED):
        if known.rel not in present:  # moved on before the journal was flushed, or deleted
            found = _locate(folders, known.rel) or State.MISSING
            journal.set_state(known.uid, found, "reconciled at start")
            summary = _summary(folders, known.rel) if found is not State.MISSING else None
            if summary is not None and summary.uid == known.uid:  # as committed
                journal.finished(known.uid, summary)
                if reconciled is not None and summary.status.value == found.value:
                    reconciled(summary)
    refs = []
    for rel in on_disk:
        row = journal.find(State.CLAIMED, rel)
        st = os.lstat(folders.of(State.CLAIMED) / rel)
        committed = _committed(folders, journal, rel, row, st)
        if row is not None:
            uid, attempts = row.uid, row.attempts
        elif committed is not None:  # its claim never reached the journal; its results did
            uid, attempts = committed.uid, committed.attempts or 1
        else:  # journal lost: it was claimed, so at least one attempt had started
            uid, attempts = identity(st) if identity else uuid.uuid4().hex, 1
        original = row.original if row else committed.original_name if committed else ""
        ref = FileRef(uid, rel, State.CLAIMED, attempts, original or rel, st.st_size, st.st_ino)
        if row is None and journal.get(uid) is None:
            journal.add(ref)
        refs.append(Recovered(ref, committed))
        log.info("file_recovered", path=rel, attempt=attempts, state=State.CLAIMED.value,
                 committed=committed is not None)  # fmt: skip
    journal.flush()
    log.info("recovery_done", recovered=len(refs), stale_temps_removed=temps)
    return refs
