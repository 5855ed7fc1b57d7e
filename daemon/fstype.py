"""Which filesystem a path lives on, read from /proc/self/mountinfo.

Shared mode needs it for one decision: SQLite's WAL mode needs shared memory and POSIX
locks that network and FUSE filesystems do not give reliably, so a journal must not land
on one (`network_fs`).
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
_NETWORK = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs", "glusterfs", "lustre",
            "gpfs", "ncpfs", "davfs"}  # fmt: skip


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in a path as \040 \011 \012 \134
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def fs_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem holding `path` (its deepest mount point), or None if
    mountinfo cannot be read (not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = -1, None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # a later mount on the same point hides earlier ones
            best, kind = len(point), tail.split()[0]
    return kind


def network_fs(kind: str | None) -> bool:
    """Whether a filesystem type is one SQLite must not keep its WAL journal on."""
    return kind is not None and (kind in _NETWORK or kind.startswith("fuse"))
