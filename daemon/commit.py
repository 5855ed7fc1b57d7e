"""Committing results: temp files renamed into results/, durably, before the input moves.

Order is the invariant: the temps made durable, then renamed — outputs first, the summary
last (a summary means "complete") — then an fsync of each results directory touched, and
only then may the caller move the input into processed/ or failed/. The temps are written
unsynced and synced together here: writeback is started for all of them before the first
`fdatasync` waits, so one journal commit carries them all instead of one commit each. A
crash at any instant leaves either no result or a complete one; a re-run of the same
input replaces its results by rename. Workers commit their own files' results
(`daemon.worker.committer`), so these renames and fsyncs run in parallel, off the
main loop; a worker with several files finished commits them as one group
(`commit_group`): one round of syncs and directory fsyncs for all of them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson

from formats.names import parsed


def _sync_file_range() -> Callable[[int], object]:
    """`sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`: start writing a file's dirty
    pages back without waiting (Linux); elsewhere a no-op, the fdatasync does it all."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda fd: None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return lambda fd: call(fd, 0, 0, 2)


_start_writeback = _sync_file_range()


def sync_files(paths: list[str]) -> None:
    """Make the contents of `paths` durable, writeback started for all before any wait."""
    fds: list[int] = []
    try:
        for path in paths:
            fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        for fd in fds:
            _start_writeback(fd)
        for fd in fds:
            os.fdatasync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stale_outputs(summary_path: str, uid: str, keep: set[str]) -> list[str]:
    """Outputs an earlier attempt of the same input committed that this one did not make."""
    try:
        with open(summary_path, "rb") as f:
            old = orjson.loads(f.read())
    except (OSError, ValueError):
        return []
    if not isinstance(old, dict) or old.get("uid") != uid:
        return []
    listed = (parsed(p) for p in old.get("output_files") or [] if isinstance(p, str))
    return [p for p in listed if p not in keep]


class Temp(NamedTuple):
    """A result written under results/.folderd-tmp/, and the name it is committed under."""

    path: str
    final: str  # relative to results/


def commit_results(
    results: Path, uid: str, temps: list[Temp], fsync: bool, rerun: bool = False
) -> OSError | None:
    """Rename one input's temps to their final names under `results`.

    `temps` has the summary last, written but not synced;
    `rerun` says an earlier attempt of `uid` may have committed results (only then are
    outputs it listed and this attempt no longer makes removed). Returns None once
    committed (and durable, with `fsync`), or the error: the temps are then removed; retry
    the file.
    """
    return commit_group([Pending(results, uid, temps, rerun)], fsync)[0]


@dataclass(frozen=True, slots=True)
class Pending:
    """One input's results waiting to be committed (see `commit_results`)."""

    results: Path
    uid: str
    temps: list[Temp]
    rerun: bool = False


def commit_group(group: list[Pending], fsync: bool) -> list[OSError | None]:
    """Commit several inputs' results together: one sync for all their temps (writeback
    started for every one before the first wait), each input's renames, then one fsync of
    each results directory touched. The result per input is `commit_results`'s. When the
    shared sync fails, each input is committed on its own, so each gets its own error."""
    if fsync:
        try:
            sync_files([tmp for p in group for tmp, _ in p.temps])
        except OSError as exc:
            if len(group) > 1:
                return [commit_group([p], fsync)[0] for p in group]
            _remove(group[0].temps)
            return [exc]
    errors: list[OSError | None] = []
    touched: dict[str, list[int]] = {}  # results directory -> the inputs renamed into it
    for i, p in enumerate(group):
        try:
            for d in _place(p):
                touched.setdefault(d, []).append(i)
            errors.append(None)
        except OSError as exc:
            _remove(p.temps)
            errors.append(exc)
    for d, inputs in touched.items() if fsync else ():
        try:
            fsync_dir(d)
        except OSError as exc:
            for i in inputs:
                errors[i] = errors[i] or exc
    return errors


def _place(p: Pending) -> set[str]:
    """Rename `p`'s temps into place (stale outputs of an earlier attempt removed first);
    the directories renamed into."""
    root = str(p.results)
    touched: set[str] = set()
    keep = {final for _, final in p.temps[:-1]}
    old = os.path.join(root, p.temps[-1].final)
    for stale in _stale_outputs(old, p.uid, keep) if p.rerun else ():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(root, stale))
    for tmp, final in p.temps:
        dest = os.path.join(root, final)
        try:
            os.replace(tmp, dest)
        except FileNotFoundError:
            if not os.path.exists(tmp):
                raise
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(tmp, dest)
        touched.add(os.path.dirname(dest))
    return touched


def _remove(temps: list[Temp]) -> None:
    for tmp, _ in temps:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def discard_temps(tmp_dir: Path, uid: str) -> None:
    """Remove whatever temp results an attempt of `uid` left behind."""
    for p in tmp_dir.glob(f"{uid}.*"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
