"""Shared mode: attempts that outlive an instance.

Each instance counts attempts in its own journal, which a peer that takes a file over
never sees. So a takeover leaves a note, `.folderd/attempts/<uid>`, with the number of
attempts interrupted so far (the one the dead instance was on is counted), and the next
claim of that input, on any instance, starts from it: an input that keeps killing
instances ends in failed/ after `--max-attempts`, as it does without --shared. The note
goes once the input reaches processed/ or failed/.
"""

from __future__ import annotations

import contextlib
import os

from daemon.states import Folders

ATTEMPTS_DIRNAME = "attempts"  # under .folderd/


def _path(folders: Folders, uid: str) -> str:
    return os.path.join(folders.meta, ATTEMPTS_DIRNAME, uid)


def carried(folders: Folders, uid: str) -> int:
    """Attempts at `uid` that instances before this claim began and never finished."""
    try:
        with open(_path(folders, uid), "rb") as f:
            return int(f.read(32) or 0)
    except (OSError, ValueError):
        return 0


def carry(folders: Folders, uid: str, interrupted: int) -> None:
    """Record that `interrupted` attempts at `uid` were cut short (a takeover)."""
    path = _path(folders, uid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{folders.instance}.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(str(max(interrupted, carried(folders, uid))).encode())
    os.replace(tmp, path)


def forget(folders: Folders, uid: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_path(folders, uid))
