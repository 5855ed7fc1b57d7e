"""A file's state is the folder it is in; `transition()` is the only thing that moves it.

Names never collide: a name already taken in a target folder gets a visible `~N` suffix
before its extension (`app.log` → `app~1.log`, `x.log.gz` → `x~1.log.gz`), so nothing is
ever overwritten. A claim also avoids names whose result summary belongs to another input,
so results of different inputs never overwrite each other either.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from daemon.errors import DaemonError

if TYPE_CHECKING:
    from daemon.journal import Journal

log = structlog.get_logger(__name__)


class State(StrEnum):
    QUEUED = "unprocessed"  # dropped in, waiting to settle and be claimed
    CLAIMED = "underprocess"  # claimed by one rename; only folderd writes here
    PROCESSED = "processed"  # results committed, then the input archived here
    FAILED = "failed"  # permanent error or attempts exhausted; reason in its summary


# (from, to) -> the verb logged as `file_<verb>`. Anything else is a bug.
TRANSITIONS: dict[tuple[State, State], str] = {
    (State.QUEUED, State.CLAIMED): "claimed",
    (State.QUEUED, State.FAILED): "rejected",  # not a regular file, empty, mtime 0, cancelled
    (State.CLAIMED, State.PROCESSED): "processed",
    (State.CLAIMED, State.FAILED): "failed",
    (State.CLAIMED, State.QUEUED): "returned",  # shutdown gives unfinished files back
    (State.FAILED, State.QUEUED): "requeued",
}

TMP_DIRNAME = ".folderd-tmp"  # under results/: temp results before their atomic rename
_COMPRESSED = {".gz", ".bz2", ".xz", ".zst"}


@dataclass(frozen=True)
class Folders:
    """The queue root's four state folders and the results root."""

    root: Path
    results: Path

    def of(self, state: State) -> Path:
        return self.root / state.value

    @cached_property
    def dirs(self) -> dict[State, str]:
        """The state folders as strings: the hot path joins strings, not Path objects."""
        return {s: str(self.root / s.value) for s in State}

    @cached_property
    def results_dir(self) -> str:
        return str(self.results)

    @property
    def meta(self) -> Path:
        return self.root / ".folderd"

    @property
    def tmp(self) -> Path:
        return self.results / TMP_DIRNAME

    def create(self) -> None:
        """Create every folder; fail clearly if one is unusable or they span filesystems."""
        dirs = [*(self.of(s) for s in State), self.meta, self.results, self.tmp]
        for d in dirs:
            try:
                d.mkdir(parents=True, exist_ok=True)
                probe = d / f".folderd-probe-{os.getpid()}"
                probe.touch()
                probe.unlink()
            except OSError as exc:
                raise DaemonError(f"cannot use folder {d}: {exc.strerror or exc}") from None
        devices = {s.value: self.of(s).stat().st_dev for s in State}
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
    queued_at: float = field(default_factory=time.time)
    open_path: str | None = None  # a symlink's checked target, opened instead of the link

    def path(self, folders: Folders) -> str:
        return os.path.join(folders.dirs[self.state], self.rel)


def numbered(rel: str, n: int) -> str:
    """`sub/app.log` → `sub/app~n.log`; compound compressed extensions stay together."""
    head, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:  # no extension, or a name like ".bashrc"
        stem, ext = name, ""
    elif "." + ext in _COMPRESSED and "." in stem.lstrip("."):
        stem, _, inner = stem.rpartition(".")
        ext = f"{inner}.{ext}"
    new = f"{stem}~{n}" + (f".{ext}" if ext else "")
    return f"{head}/{new}" if head else new


def _summary_owner(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read()).get("uid")
    except (OSError, ValueError, AttributeError):
        return None


def free_name(folders: Folders, to: State, rel: str, uid: str) -> str:
    """The first of rel, rel~1, rel~2… that is free in `to` (and, for a claim, everywhere
    the file will go next, with no summary of another input under that name)."""
    check = [to] if to is not State.CLAIMED else [State.CLAIMED, State.PROCESSED, State.FAILED]
    n = 0
    candidate = rel
    while True:
        taken = any(os.path.lexists(os.path.join(folders.dirs[s], candidate)) for s in check)
        if not taken and to is State.CLAIMED:
            summary = folders.summary_path(candidate)
            taken = os.path.exists(summary) and _summary_owner(summary) != uid
        if not taken:
            return candidate
        n += 1
        candidate = numbered(rel, n)


def transition(
    folders: Folders,
    journal: Journal | None,
    ref: FileRef,
    to: State,
    *,
    reason: str | None = None,
    summary: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Move `ref` to `to` by one rename, journal it and log it; updates ref.rel/ref.state.

    `summary` (the outcome of the attempt that ends here) is journaled with the move.

    Raises FileNotFoundError if the file is no longer where the daemon left it.
    """
    verb = TRANSITIONS.get((ref.state, to))
    if verb is None:
        raise ValueError(f"no transition {ref.state.value} -> {to.value}")
    src = ref.path(folders)
    new_rel = free_name(folders, to, ref.rel, ref.uid)
    dst = os.path.join(folders.dirs[to], new_rel)
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        if os.path.isdir(os.path.dirname(dst)) or not os.path.lexists(src):
            raise
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise DaemonError(f"{src} and {dst} are on different filesystems") from None
        raise
    old_state, old_rel = ref.state, ref.rel
    ref.state, ref.rel = to, new_rel
    if "/" in old_rel and old_state is not State.QUEUED:
        _prune_empty_parents(os.path.dirname(src), folders.dirs[old_state])
    if journal is not None:
        journal.transition(ref, old_state, old_rel, reason=reason, summary=summary)
    log.info(
        f"file_{verb}",
        path=new_rel,
        **({"from_path": old_rel} if old_rel != new_rel else {}),
        **{"from": old_state.value, "to": to.value},
        state=to.value,
        attempt=ref.attempt,
        **({"reason": reason} if reason else {}),
        **fields,
    )


def _prune_empty_parents(d: str, top: str) -> None:
    # Sub-folders of unprocessed/ belong to whoever drops files (rsync -r may still be
    # writing into them), so callers never prune there; the other folders are folderd's.
    while d.startswith(top + os.sep):
        try:
            os.rmdir(d)
        except OSError:
            return
        d = os.path.dirname(d)
