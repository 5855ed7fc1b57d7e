"""Small records on the shared filesystem, kept as symlinks: never opened, so FUSE never
hides them.

FUSE's high-level library (sshfs 3 is built on it, and cannot turn on its `hard_remove`)
renames a file that is unlinked, or replaced by a rename, while it is open on that mount to
`.fuse_hidden*`, and removes that when the file is released. A file *closed* a moment before
still counts as open until the kernel's asynchronous RELEASE has been handled; when that
lands while the hide is under way, the `.fuse_hidden*` file is never removed. Measured on
this project's VM over sshfs: 9 to 15 % of "create, close, unlink" left one, and a lease
rewritten while a peer on the same mount read it left one in 2 % of rewrites.

A symlink is never opened: reading it (`readlink` + `lstat`), replacing it (a rename) and
removing it leave nothing behind, on FUSE as anywhere. So on FUSE the records
peers read and replace — leases (`daemon.shared.lease`), the clock probe — hold their text
in a symlink's target; its `lstat` gives the mtime the server stamped when it was made.
Elsewhere (no such hiding; `hides_files`), and where symlinks are refused, they are regular
files, and either form is read wherever it is found.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from daemon.fstype import fs_type

# symlink() refused by the filesystem: regular files there
REFUSED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
MAX_TEXT = 1 << 12  # a symlink's target may be at most PATH_MAX; NFSv3 servers 1 KiB and up


def hides_files(directory: Path) -> bool:
    """Whether `directory` is on FUSE, where a file replaced or removed just after its close
    may be left behind hidden. Elsewhere records stay regular files: an NFS client
    revalidates a file's attributes at each open (close-to-open), but may answer a
    symlink's `lstat` from its attribute cache, up to `acregmax` old."""
    kind = fs_type(directory)
    return kind is not None and kind.startswith("fuse")


def write(path: Path, text: str, tmp_tag: str, link: bool = True) -> os.stat_result:
    """Make `path` hold `text` atomically (a temp `.<name>.<tmp_tag>` beside it, renamed
    over it): readers find the old text or the new, never a part. A symlink if `link`
    (and the filesystem has them), else a regular file. Its lstat after the rename (the
    mtime is the filesystem's clock). OSError if the filesystem refuses."""
    if len(text.encode(errors="surrogateescape")) > MAX_TEXT:
        raise ValueError(f"a note holds at most {MAX_TEXT} bytes")
    tmp = path.with_name(f".{path.name}.{tmp_tag}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a rewrite a crash cut short
    try:
        if not link:
            raise OSError(errno.ENOSYS, "a regular file asked for")
        os.symlink(text, tmp)
    except OSError as exc:
        if exc.errno not in REFUSED:
            raise
        with open(tmp, "wb") as f:  # no symlinks here: no FUSE hiding either
            f.write(text.encode(errors="surrogateescape"))
    os.replace(tmp, path)
    return os.lstat(path)


def read(path: Path) -> tuple[str, os.stat_result]:
    """The text `path` holds and its lstat (OSError if it cannot be read: gone meanwhile).
    A symlink is read without opening it; a regular file (no symlinks on this filesystem,
    or an older folderd's) by open, read, close."""
    st = os.lstat(path)
    try:
        return os.readlink(path), st
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a symlink
            raise
    with open(path, "rb") as f:
        raw = f.read(MAX_TEXT + 1)
        st = os.fstat(f.fileno())
    return raw.decode(errors="surrogateescape"), st


def stamp(directory: Path, tag: str) -> float:
    """The filesystem's clock: the mtime of a symlink made in `directory` just now (made,
    read and removed, never opened)."""
    probe = directory / f".clock-{tag}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)
    try:
        os.symlink("t", probe)
    except OSError as exc:
        if exc.errno not in REFUSED:
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
