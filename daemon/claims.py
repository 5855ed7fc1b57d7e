"""Claiming: a settled file in unprocessed/ becomes a FileRef in underprocess/ by one rename.

A file is claimed only when a worker is free for it, and only if it is still what settled
(same size, mtime, ctime, inode); one that changed since goes back to settling. One that
must never be processed (`intake.inspect`: a FIFO, a symlink out of watch_dir, an empty
file…) is rejected to failed/ instead. A file returned to unprocessed/ at shutdown, or
requeued, keeps its journal row (and attempts) when it is claimed again.
"""

from __future__ import annotations

import os
import stat
import time

import structlog

from config.pipeline import SUMMARY_SUFFIX
from daemon import identity
from daemon.errors import DaemonError
from daemon.faults import Fault, PauseReason, cause_of, classify
from daemon.intake import Intake, inspect
from daemon.journal import Journal
from daemon.moves import NUMBER_ROOM, name_bytes, transition
from daemon.outcomes import Outcomes
from daemon.settle import Signature, signature
from daemon.shared import attempts
from daemon.shared.instance import Shared
from daemon.states import Claimed, FileRef, Folders, State
from processors import LoadedPipeline

log = structlog.get_logger(__name__)


def checked_name(rel: str) -> str:
    """`rel` if it is a plain relative name under a state folder; ValueError if not (empty,
    absolute, a NUL byte, an empty, `.` or `..` part): what an action may be asked to act on."""
    if not rel or "\0" in rel or rel.startswith("/"):
        raise ValueError(f"invalid name {rel!r}")
    if any(part in ("", ".", "..") for part in rel.split("/")):
        raise ValueError(f"invalid name {rel!r}: empty, '.' and '..' parts are not allowed")
    return rel


class Claimer:
    def __init__(
        self,
        folders: Folders,
        journal: Journal,
        intake: Intake,
        outcomes: Outcomes,
        *,
        zero_mtime: str,
        empty_files: str,
        pipeline: LoadedPipeline | None = None,
        shared: Shared | None = None,
    ) -> None:
        self.folders = folders
        self.shared = shared
        self.journal = journal
        self.intake = intake
        self.outcomes = outcomes
        self.zero_mtime = zero_mtime
        self.empty_files = empty_files
        self.name_max = outcomes.name_max  # the results filesystem's longest name
        self._carried = 0  # shared: attempts interrupted at the input being claimed…
        self._noted = False  # …and whether a note of its return named it (`_shared_ref`)
        self.use(pipeline)

    def use(self, pipeline: LoadedPipeline | None) -> None:
        """Names must leave room for the result suffixes `pipeline` adds (and `.json`, and
        a `~N`): claims from now on check against the longest."""
        suffixes = [o.suffix for o in pipeline.config.outputs.values()] if pipeline else []
        longest = max(len(s.encode()) for s in (*suffixes, SUMMARY_SUFFIX))
        self.name_room = 1 + longest + len(NUMBER_ROOM)

    def too_long(self, rel: str) -> str | None:
        """Why `rel`'s name leaves no room for its results' names, or None."""
        n = name_bytes(rel.rpartition("/")[2])
        if n + self.name_room <= self.name_max:
            return None
        return (f"name is {n} bytes: with a result suffix it would pass the filesystem's "
                f"{self.name_max}-byte limit (at most {self.name_max - self.name_room} bytes "
                "here); rename it shorter")  # fmt: skip

    def next(self) -> FileRef | None:
        """Claim the longest-settled file that can be claimed; None if there is none."""
        while (item := self.intake.pop()) is not None:
            ref = self.claim(item.path, item.sig)
            if ref is not None:
                return ref
        return None

    def claim(self, path: str, sig: Signature) -> FileRef | None:
        rel = self.intake.rel(path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if signature(st) != sig:  # changed while it waited for a worker
            self.intake.resettle(path, signature(st))
            return None
        ref = self.queued_ref(rel, st)
        if self._still_held(ref.uid):  # see there: later
            self.intake.resettle(path, signature(st))
            return None
        reason, ref.open_path = inspect(
            path, st, self.folders.root, self.zero_mtime, self.empty_files
        )
        reason = reason or self.too_long(rel)
        try:
            if reason:
                self.outcomes.reject(ref, reason)
                return None
            interrupted = self._carried if self.shared else 0
            if not interrupted:
                ref.attempt += 1
            transition(self.folders, self.journal, ref, State.CLAIMED)
            self.intake.claim_failed(rel, None)
            if self._noted:  # the note that named it is used up
                identity.forget_return(self.folders, rel)
            self.intake.claimed(path, ref.uid)  # its ready marker consumed (daemon.markers)
            if ref.open_path is None:  # a symlink's lstat says nothing of its target's bytes
                ref.claimed = Claimed.of(st)
        except FileNotFoundError:
            if self.shared is not None:  # a peer's rename won: its row was never added
                self.shared.lost_race(rel)
                return None
            self.journal.set_state(ref.uid, State.MISSING, "removed before it was claimed")
            return None
        except (OSError, DaemonError) as exc:  # a sub-folder it cannot move files out of…
            # The file stays in unprocessed/, untouched; the next rescan tries again, so the
            # error is logged once per --rescan-interval until someone fixes it. A read-only
            # or full watch_dir is the machine's: claiming pauses (and rescans on resume).
            log.error("claim_failed", path=rel, state=State.QUEUED.value, error=str(exc),
                      action="left in unprocessed/, retried at the next rescan")  # fmt: skip
            self.journal.set_state(ref.uid, State.QUEUED, f"claim failed: {exc}")
            self.intake.claim_failed(rel, f"cannot be moved out of unprocessed/: {exc}")
            if classify(exc) is Fault.ENVIRONMENT:
                self.outcomes.pause.hold(PauseReason(cause_of(exc), f"claiming: {exc}"),
                                         time.monotonic())  # fmt: skip
            return None
        if interrupted:  # taken over from instances that died on it: as if recovered here
            self.outcomes.recovered(ref)
            return None
        return ref

    def queued_ref(self, rel: str, st: os.stat_result) -> FileRef:
        """The FileRef of a file in unprocessed/: its old row if it was returned at shutdown
        or requeued (same inode), else a new one."""
        if self.shared is not None:
            return self._shared_ref(self.shared, rel, st)
        row = self.journal.find(State.QUEUED, rel)
        if row is not None and row.inode == st.st_ino:
            return FileRef(row.uid, rel, State.QUEUED, row.attempts, row.original or rel,
                           st.st_size, st.st_ino, rerun=True)  # fmt: skip
        uid = identity.single_uid(st, self.journal.get)
        ref = FileRef(uid, rel, State.QUEUED, 0, rel, st.st_size, st.st_ino)
        self.journal.add(ref)
        return ref

    def _still_held(self, uid: str) -> bool:
        """Shared mode: whether this instance still holds an attempt at this input, which
        came back to unprocessed/ while this one was frozen (moved back by hand, say). That
        attempt ends first (the file is gone from under it); only then may the input be
        claimed again here."""
        if self.shared is None:
            return False
        row = self.journal.get(uid)
        return row is not None and row.state is State.CLAIMED

    def _shared_ref(self, shared: Shared, rel: str, st: os.stat_result) -> FileRef:
        """Shared mode: the uid is the input's identity (`daemon.identity`), so an input
        another instance had claimed, or gave back, keeps its uid. The row is added by the
        claim's transition only once this instance's rename won, so a lost race leaves no
        row behind."""
        names_by = shared.identity
        uid = identity.returned(self.folders, rel, st) if names_by.records else None
        self._noted = uid is not None
        known = self._noted or not names_by.records  # a fresh random uid has no history
        uid = uid or names_by.new_uid(st)
        row = self.journal.get(uid) if known else None
        tries = attempts.carried(self.folders, uid) if known else 0  # interrupted on
        self._carried = tries  # instances now dead
        if row is not None and row.state is State.QUEUED:  # returned at shutdown, requeued
            return FileRef(uid, rel, State.QUEUED, max(row.attempts, tries),
                           row.original or rel, st.st_size, st.st_ino, rerun=True)  # fmt: skip
        return FileRef(uid, rel, State.QUEUED, tries, rel, st.st_size, st.st_ino)

    def reject_queued(self, rel: str, reason: str) -> FileRef:
        """Move a file waiting in unprocessed/ to failed/ with `reason`.

        Raises ValueError unless `rel` names a file folderd would claim (a regular file,
        not hidden, not ignored, no `..`), FileNotFoundError if it is not waiting there.
        """
        path = os.path.join(self.folders.dirs[State.QUEUED], checked_name(rel))
        if self.intake.ignored(rel):
            raise ValueError(f"{rel!r} is hidden or matches --ignore-patterns: never claimed")
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(path) from None
        except OSError as exc:  # a name too long, a loop of links…
            raise ValueError(f"{rel!r}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{rel!r} is not a regular file")
        self.intake.remove(path)
        ref = self.queued_ref(rel, st)
        self.outcomes.reject(ref, reason)
        return ref
