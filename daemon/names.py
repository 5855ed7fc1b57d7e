"""Shared mode: reserving a claim's name, so two instances never pick the same one.

A claim checks that its name is free everywhere the file will go (`moves.free_name`), then
renames. One instance does both in order, but two instances may check the same free name
at once, for two different inputs (`a.log` and a dropped `a~1.log`, say), and would both
write `results/a~1.log.json`. So in shared mode a claim first creates
`.folderd/names/<hash of the name>` by `link()` from a temp file (the lock-file recipe
that is atomic on NFS too: the server lets exactly one link win), the other tries the next
`~N`. The file holds the input's uid, so the same input claimed again after a takeover
finds the name its own. It is removed once the file has left underprocess/: from then on
the file in processed/ or failed/ and its summary keep the name taken.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os

from daemon.states import Folders, State

NAMES_DIRNAME = "names"  # under .folderd/
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _path(folders: Folders, rel: str) -> str:
    key = hashlib.sha256(rel.encode(errors="surrogateescape")).hexdigest()[:32]
    return os.path.join(folders.meta, NAMES_DIRNAME, key)


def _owner(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(64).decode(errors="replace").partition("\n")[0]
    except OSError:
        return None


def reserve(folders: Folders, rel: str, uid: str) -> bool:
    """Whether `rel` is now reserved for `uid` (made now, or already its own)."""
    path = _path(folders, rel)
    tmp = f"{path}.{folders.instance}.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(f"{uid}\n{folders.instance}\n{rel}\n".encode(errors="surrogateescape"))
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return reserve(folders, rel, uid)
    try:  # written first, linked whole: a reader never sees half a reservation
        os.link(tmp, path)
    except FileExistsError:  # NFS: a retransmitted link that had succeeded links twice
        return os.stat(tmp).st_nlink == 2 or _owner(path) == uid
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        return _create(path, tmp, uid)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


def _create(path: str, tmp: str, uid: str) -> bool:
    """Without hard links (SMB without Unix extensions): an exclusive create. A reader may
    then see it empty for an instant; an empty owner is nobody's, so that reader takes the
    next `~N`: a name given away, never one given twice."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return _owner(path) == uid
    try:
        with open(tmp, "rb") as f:
            os.write(fd, f.read())
    finally:
        os.close(fd)
    return True


def release(folders: Folders, rel: str, uid: str) -> None:
    """Drop `uid`'s reservation of `rel` (another input's is left alone)."""
    path = _path(folders, rel)
    if _owner(path) == uid:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def drop_stale(folders: Folders) -> int:
    """At start: this instance's reservations of names it holds nothing under (it died
    between a reservation and its claim, or a move and the release); how many."""
    top = os.path.join(folders.meta, NAMES_DIRNAME)
    claimed = folders.dirs[State.CLAIMED]
    dropped = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(top) as entries:
        for entry in entries:
            with contextlib.suppress(OSError), open(entry.path, "rb") as f:
                _, instance, rel = f.read(8192).decode(errors="surrogateescape").split("\n")[:3]
                if instance == folders.instance and not os.path.lexists(os.path.join(claimed, rel)):
                    os.unlink(entry.path)
                    dropped += 1
    return dropped
