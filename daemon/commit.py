"""Committing results: temp files renamed into results/, durably, before the input moves.

Order is the invariant: outputs first, the summary last (a summary means "complete"),
then one fsync per touched results directory for the whole batch (so a burst pays one
directory fsync per batch, not per file), and only then may the caller move the inputs
into processed/ or failed/. A crash at any instant leaves either no result or a complete
one; a re-run of the same input replaces its results by rename.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from pathlib import Path

import orjson
import structlog

log = structlog.get_logger(__name__)


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
    results: Path,
    items: list[tuple[str, list[tuple[str, str]]]],
    fsync: bool,
    reruns: Collection[str] = (),
) -> dict[str, OSError]:
    """Rename each item's temps to their final names under `results`.

    `items` is [(uid, [(temp path, final rel)…])…] with each item's summary last; `reruns`
    the uids an earlier attempt may have committed results for (only theirs are checked for
    outputs this attempt no longer makes). Returns the uids whose commit failed, with the
    error (their temps are removed; retry them).
    """
    root = str(results)
    touched: set[str] = set()
    failed: dict[str, OSError] = {}
    for uid, temps in items:
        try:
            summary_rel = temps[-1][1]
            keep = {final for _, final in temps[:-1]}
            old = os.path.join(root, summary_rel)
            for stale in _stale_outputs(old, uid, keep) if uid in reruns else ():
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
        except OSError as exc:
            failed[uid] = exc
            for tmp, _ in temps:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    if fsync:
        for d in touched:
            try:
                fsync_dir(d)
            except OSError as exc:  # not durable: treat every item in that dir as failed
                log.error("results_fsync_failed", dir=str(d), error=str(exc))
                for uid, temps in items:
                    if any(os.path.dirname(os.path.join(root, f)) == d for _, f in temps):
                        failed.setdefault(uid, exc)
    return failed
