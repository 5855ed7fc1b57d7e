"""Committing results: temp files renamed into results/, durably, before the input moves.

Order is the invariant: the temps made durable, then renamed — outputs first, the summary
last (a summary means "complete") — then an fsync of each results directory touched, and
only then may the caller move the input into processed/ or failed/. The temps are written
unsynced and synced together here: writeback is started for all of them before the first
`fdatasync` waits, so one journal commit carries them all instead of one commit each. A
crash at any instant leaves either no result or a complete one; a re-run of the same
input replaces its results by rename. Workers commit their own file's results
(`daemon.worker.run_job`), so these renames and fsyncs run in parallel, off the main loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Callable
from pathlib import Path

import orjson


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
    return [p for p in old.get("output_files") or [] if p not in keep]


def commit_results(
    results: Path, uid: str, temps: list[tuple[str, str]], fsync: bool, rerun: bool = False
) -> OSError | None:
    """Rename one input's temps to their final names under `results`.

    `temps` is [(temp path, final rel)…] with the summary last, written but not synced;
    `rerun` says an earlier attempt of `uid` may have committed results (only then are
    outputs it listed and this attempt no longer makes removed). Returns None once
    committed (and durable, with `fsync`), or the error: the temps are then removed; retry
    the file.
    """
    root = str(results)
    touched: set[str] = set()
    try:
        if fsync:
            sync_files([tmp for tmp, _ in temps])
        keep = {final for _, final in temps[:-1]}
        old = os.path.join(root, temps[-1][1])
        for stale in _stale_outputs(old, uid, keep) if rerun else ():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(root, stale))
        for tmp, final in temps:
            dest = os.path.join(root, final)
            try:
                os.replace(tmp, dest)
            except FileNotFoundError:
                if not os.path.exists(tmp):
                    raise
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(tmp, dest)
            touched.add(os.path.dirname(dest))
        if fsync:
            for d in touched:
                fsync_dir(d)
    except OSError as exc:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return exc
    return None
