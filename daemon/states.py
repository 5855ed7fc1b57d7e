"""The vocabulary of the queue: a file's state is the folder it is in.

`State` names the four folders, and `missing`: the journal's word for a file that left them
without folderd moving it (deleted by hand mid-way). `TRANSITIONS` lists the moves allowed
between folders, `Folders` says where they are, `FileRef` is what the daemon knows of one
input. Moving a file is `daemon.moves`'s job; this module only says what the words mean,
so the journal and the dashboard use them without importing the mover.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from daemon.errors import DaemonError


class State(StrEnum):
    QUEUED = "unprocessed"  # dropped in, waiting to settle and be claimed
    CLAIMED = "underprocess"  # claimed by one rename; only folderd writes here
    PROCESSED = "processed"  # results committed, then the input archived here
    FAILED = "failed"  # permanent error or attempts exhausted; reason in its summary
    MISSING = "missing"  # journal only: gone from the folders without folderd moving it


FOLDER_STATES: tuple[State, ...] = (State.QUEUED, State.CLAIMED, State.PROCESSED, State.FAILED)

# (from, to) -> the verb logged as `file_<verb>`. Anything else is a bug.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.CLAIMED): "claimed",
    (State.QUEUED, State.FAILED): "rejected",  # not a regular file, empty, mtime 0, cancelled
    (State.CLAIMED, State.PROCESSED): "processed",
    (State.CLAIMED, State.FAILED): "failed",
    (State.CLAIMED, State.QUEUED): "returned",  # shutdown gives unfinished files back
    (State.CLAIMED, State.CLAIMED): "taken_over",  # shared: a dead peer's claim, now ours
    (State.FAILED, State.QUEUED): "requeued",
    (State.PROCESSED, State.QUEUED): "reprocessed",  # to run again (daemon.reprocess)
}

TMP_DIRNAME = ".folderd-tmp"  # under results/: temp results before their atomic rename
UPLOAD_DIRNAME = ".folderd-upload"  # in unprocessed/: same filesystem, hidden, never claimed


@dataclass(frozen=True)
class Folders:
    """The queue root's four state folders and the results root.

    In shared mode (`instance` set) an instance's claims live in its own folder,
    `underprocess/<instance>/`, its temp results and staged uploads in its own hidden
    folders, and its journal in `state_dir` (else beside the others' under `.folderd/`):
    all that peers share is unprocessed/, processed/, failed/ and results/.
    """

    root: Path
    results: Path
    instance: str = ""
    state_dir: Path | None = None

    def of(self, state: State) -> Path:
        if state is State.MISSING:
            raise ValueError("a missing file has no folder")
        if state is State.CLAIMED and self.instance:
            return self.root / state.value / self.instance
        return self.root / state.value

    @cached_property
    def dirs(self) -> dict[State, str]:
        """The state folders as strings: the hot path joins strings, not Path objects."""
        return {s: str(self.of(s)) for s in FOLDER_STATES}

    @cached_property
    def results_dir(self) -> str:
        return str(self.results)

    @cached_property
    def meta(self) -> Path:
        return self.root / ".folderd"

    @cached_property
    def journal(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir / "journal.sqlite3"
        name = f"journal-{self.instance}.sqlite3" if self.instance else "journal.sqlite3"
        return self.meta / name

    @cached_property
    def commit_deadline(self) -> Path | None:
        """Shared mode: the local file saying until when this instance may commit."""
        return self.journal.with_suffix(".commit-deadline") if self.instance else None

    @cached_property
    def tmp(self) -> Path:
        return self.results / (f"{TMP_DIRNAME}-{self.instance}" if self.instance else TMP_DIRNAME)

    @cached_property
    def uploads(self) -> Path:
        name = f"{UPLOAD_DIRNAME}-{self.instance}" if self.instance else UPLOAD_DIRNAME
        return self.of(State.QUEUED) / name

    def create(self) -> None:
        """Create every folder; fail clearly if one is unusable or they span filesystems."""
        dirs = [*(self.of(s) for s in FOLDER_STATES), self.meta, self.results, self.tmp]
        if self.state_dir is not None:
            dirs.append(self.state_dir)
        for d in dirs:
            try:
                d.mkdir(parents=True, exist_ok=True)
                probe = d / f".folderd-probe-{os.getpid()}"  # a folder, not a file: on FUSE
                probe.mkdir()  # a file removed right after its close may be hidden as a
                probe.rmdir()  # `.fuse_hidden*` left behind (sshfs without hard_remove)
            except OSError as exc:
                raise DaemonError(f"cannot use folder {d}: {exc.strerror or exc}") from None
        devices = {s.value: self.of(s).stat().st_dev for s in FOLDER_STATES}
        if len(set(devices.values())) > 1:
            raise DaemonError(
                f"the state folders under {self.root} are on different filesystems "
                f"({devices}); a move between them would not be an atomic rename. "
                "Put unprocessed/ underprocess/ processed/ failed/ on one filesystem."
            )
        if self.results.stat().st_dev != self.tmp.stat().st_dev:
            raise DaemonError(f"{self.tmp} must be on the same filesystem as {self.results}")

    def summary_path(self, rel: str) -> str:
        return os.path.join(self.results_dir, f"{rel}.json")


class Claimed(NamedTuple):
    """What a file was when it was claimed: its next attempt opens these bytes or none."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> Claimed:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class FileRef:
    """What the daemon knows of one input while it is alive in the queue."""

    uid: str
    rel: str  # current name, relative to its state folder
    state: State
    attempt: int = 0  # attempts started so far
    original: str = ""  # name it arrived under
    size: int = 0
    inode: int = 0
    open_path: str | None = None  # a symlink's checked target, opened instead of the link
    claimed: Claimed | None = None  # what it was at its claim, until
    # the first attempt after the claim has checked the bytes it opens against it
    held: int = 0  # attempts given back because the machine failed (a full disk…)
    rerun: bool = False  # back in the queue after it finished (requeued, reprocessed): the
    # results of its earlier run may be in results/, to be replaced by the next commit

    def path(self, folders: Folders) -> str:
        return os.path.join(folders.dirs[self.state], self.rel)
