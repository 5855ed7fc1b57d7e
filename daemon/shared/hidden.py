"""FUSE's `.fuse_hidden*` files: how shared mode makes none it can avoid and leaves none.

FUSE's high-level library (sshfs 3 is built on it, and refuses its `hard_remove`) renames a
file that is unlinked, or replaced by a rename, while it is open on that mount to
`.fuse_hidden*`, and removes that when the file is released. A file *closed* a moment
before still counts as open until the kernel's asynchronous RELEASE has been handled; when
that lands while the hide is under way, the hidden file is never removed. Measured on this
project's VM over sshfs with `-o dir_cache=no` (the option hosts sharing a folder need; never
seen without it): 9 to 15 % of "create, close, unlink" left one, a lease read and removed at
a clean stop 1 %, and a lease rewritten while a peer on the same mount read it 2 %.

So shared mode makes nothing it opens only to remove it: the filesystem's clock is read
from a symlink (`stamp`), never opened; a lease is removed at a clean stop after an lstat,
not a read. What it cannot avoid — a peer on the same mount reading a lease as its holder
replaces it, a worker removing a temp result it has just closed — `sweep` removes at each
renewal: a `.fuse_hidden*` file is nobody's record, and one still open is either hidden
again by its own mount (and goes at its close) or, removed from another host, stays
readable through the handle that holds it on the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

PREFIX = ".fuse_hidden"
_NO_SYMLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def stamp(directory: Path, tag: str) -> float:
    """The filesystem's clock: the mtime of a symlink made in `directory` just now (made,
    read and removed, never opened; a file where symlinks are refused, as on SMB without
    Unix extensions, which hides nothing)."""
    probe = directory / f".clock-{tag}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)
    try:
        os.symlink("t", probe)
    except OSError as exc:
        if exc.errno not in _NO_SYMLINKS:
            raise
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, b"t")
        finally:
            os.close(fd)
    try:
        return os.lstat(probe).st_mtime
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


def sweep(*folders: Path) -> int:
    """Remove the `.fuse_hidden*` files in `folders` (not below them); how many."""
    removed = 0
    for d in folders:
        with contextlib.suppress(OSError), os.scandir(d) as entries:
            for entry in entries:
                if entry.name.startswith(PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
    return removed
