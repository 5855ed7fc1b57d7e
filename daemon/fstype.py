"""Which filesystem a path lives on, read from /proc/self/mountinfo.

Shared mode needs it for two things. SQLite's WAL mode needs shared memory and POSIX locks
that network and FUSE filesystems do not give reliably, so a journal must not land on one
(`network_fs`). And a client that caches directory listings or lookups hides from one
host what another just did: `advice` reads the options of the share's mount (NFS's from
mountinfo; sshfs's, which mountinfo does not show, from its process's command line) and
says what they lack.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
_NETWORK = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs", "glusterfs", "lustre",
            "gpfs", "ncpfs", "davfs"}  # fmt: skip


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in a path as \040 \011 \012 \134
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


@dataclass(frozen=True, slots=True)
class Mount:
    point: str
    kind: str
    source: str
    options: tuple[str, ...]  # the superblock's (NFS: vers, lookupcache, acdirmax…)


def mount_of(path: Path, mountinfo: str | None = None) -> Mount | None:
    """The mount holding `path` (the deepest mount point above it), or None if mountinfo
    cannot be read (not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best: Mount | None = None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or not rest:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):  # a later mount on
            rest += ["", ""]  # the same point hides earlier ones
            best = Mount(point, rest[0], _unescape(rest[1]), tuple(rest[2].split(",")))
    return best


def fs_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem holding `path`, or None if mountinfo cannot be read."""
    mount = mount_of(path, mountinfo)
    return mount.kind if mount else None


def advice(path: Path, lease_s: float, mountinfo: str | None = None,
           proc: Path = Path("/proc")) -> list[str]:  # fmt: skip
    """What the mount holding `path` should change so that every host sees what the
    others do within a lease (empty: nothing found wanting)."""
    mount = mount_of(path, mountinfo)
    if mount is None:
        return []
    opts = dict(o.partition("=")[::2] for o in mount.options)
    out = []
    if mount.kind in ("nfs", "nfs4"):
        if opts.get("lookupcache") not in ("pos", "positive", "none"):
            out.append("NFS caches failed lookups (lookupcache=all): a file another host "
                       "just renamed into place can look absent; mount with "
                       "lookupcache=positive")  # fmt: skip
        acdirmax = int(opts.get("acdirmax", "60") or 60)
        if acdirmax > max(1.0, lease_s / 4):
            out.append(f"NFS caches directory attributes up to {acdirmax} s (acdirmax): "
                       "new files may stay unseen that long; mount with actimeo=1")  # fmt: skip
    elif mount.kind == "fuse.sshfs":
        found = sshfs_options(mount.point, proc)
        if found is None:
            out.append("sshfs: the options of this mount could not be read (its process is "
                       "not visible here); it must be mounted with -o dir_cache=no")  # fmt: skip
        elif not {"dir_cache=no", "cache=no"} & found:
            out.append("sshfs caches directory listings (20 s by default): files other "
                       "hosts drop or move stay unseen; mount with -o dir_cache=no")  # fmt: skip
    return out


def sshfs_options(point: str, proc: Path = Path("/proc")) -> set[str] | None:
    """The `-o` options of the sshfs process serving the mount at `point`, or None if no
    such process is visible."""
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="surrogateescape")
                    for a in (entry / "cmdline").read_bytes().split(b"\0")]  # fmt: skip
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != "sshfs" or point not in argv:
            continue
        options: set[str] = set()
        for i, arg in enumerate(argv):
            if arg == "-o" and i + 1 < len(argv):
                options.update(argv[i + 1].split(","))
            elif arg.startswith("-o") and len(arg) > 2:
                options.update(arg[2:].split(","))
        return options
    return None


def network_fs(kind: str | None) -> bool:
    """Whether a filesystem type is one SQLite must not keep its WAL journal on."""
    return kind is not None and (kind in _NETWORK or kind.startswith("fuse"))
