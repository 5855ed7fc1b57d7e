"""Shared mode: what makes two sightings of a file the same input, on every host.

An input keeps one uid from its claim to its summary: the summary and its sink rows are
keyed by it, and a commit that races a takeover must replace, never add. Two ways to name
an input, chosen at start-up by what the mount shows:

- **inode** (a local filesystem, kernel NFS, SMB with `serverino`): the uid is
  `sha256(inode, size, mtime_ns)`. A rename keeps all three and a write changes the
  mtime, so every host computes the same uid for the same file — the inode number is the
  server's file id on each of them — and a copy (a new inode) is a new input.
- **record** (sshfs, FUSE clients that number files per mount): the inode number a host
  sees is its own, so two hosts see one file under two numbers, and two files under one
  (sshfs numbers files in the order it meets them: hosts listing one folder give its files
  the same numbers). There the uid is drawn at random at the claim and *written down*
  with it: the name reservation of the claim (`daemon.shared.reservations`, in its text
  form) holds it while the file is in underprocess/, so a peer that takes the claim over
  reads the uid there; a file folderd itself gives back to unprocessed/ (a shutdown, a
  requeue) gets a note, `.folderd/returns/<hash of its name>`, with its uid, size and
  mtime, which the next claim of that name, on any host, takes if the file still
  matches. A copy has no record: a new input. (A file moved back by hand from processed/
  is then a new input too, with a `~N` name, as without --shared.)

Whether a mount's inode numbers can be trusted is probed at start (`probe`): a file and a
hard link to it must show one number and a link count of 2, and a directory listing must
give the number stat gives. Across hosts, each lease carries the number its holder sees
for its own lock file, and peers compare it with theirs (`Identity.check_peers`). Record
mode spreads: once any live instance uses it (or two disagree), every instance does, for
the rest of its run, so that a claim one instance names by record is never named by inode
by another.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import structlog

from daemon.shared import reservations
from daemon.shared.lease import PeerLease
from daemon.states import Folders

log = structlog.get_logger(__name__)

INODE, RECORD = "inode", "record"
RETURNS_DIRNAME = "returns"  # under .folderd/


def input_uid(st: os.stat_result) -> str:
    """An input's uid by inode: inode + size + mtime_ns (`st_dev` is left out: each NFS
    client numbers its mounts its own way)."""
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def single_uid(st: os.stat_result, known: Callable[[str], object]) -> str:
    """Without --shared, a new input's uid: by inode, so that a run killed before its
    journal heard of a claim finds the uid again at start (`daemon.recovery`) — the uid its
    deliveries were made under, which they are replaced by, not added to. A uid the journal
    `known` already (a file moved back by hand from processed/) is a new input's: random."""
    uid = input_uid(st)
    return uid if known(uid) is None else uuid.uuid4().hex


def probe(directory: Path) -> str | None:
    """Why inode numbers on the filesystem of `directory` cannot name a file, or None."""
    base = directory / f".inode-probe-{socket.gethostname()}-{os.getpid()}"
    link = base.with_name(base.name + "-link")
    try:
        _make(base)
        st = os.lstat(base)
        with os.scandir(directory) as entries:
            listed = next((e.inode() for e in entries if e.name == base.name), None)
        if listed is not None and listed != st.st_ino:
            return (f"a directory listing numbers a file {listed}, stat {st.st_ino}: "
                    "this client numbers files itself")  # fmt: skip
        try:
            os.link(base, link, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP,
                             errno.ENOSYS, errno.EMLINK):  # fmt: skip
                return None  # no hard links here (SMB): the listing check is all there is
            raise
        one, two = os.lstat(base), os.lstat(link)
        if one.st_ino != two.st_ino or one.st_nlink < 2:
            return (f"a file and a hard link to it show numbers {one.st_ino} and "
                    f"{two.st_ino}, link count {one.st_nlink}: this client numbers names, "
                    "not files (sshfs does, per mount)")  # fmt: skip
        return None
    finally:
        for p in (link, base):
            with contextlib.suppress(OSError):
                os.unlink(p)


def _make(path: Path) -> None:
    """A symlink, never opened (FUSE may hide a file removed right after its close as a
    `.fuse_hidden*` left behind); a file where there are no symlinks."""
    try:
        os.symlink("probe", path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        with open(path, "wb"):
            pass


class Identity:
    """How this instance names inputs (loop thread only; see the module)."""

    def __init__(self, folders: Folders, untrusted: str | None) -> None:
        self.folders = folders
        self.mode = INODE
        self.why: str | None = None
        if untrusted:
            self.use_records(f"inode numbers on this mount cannot be trusted: {untrusted}")

    @property
    def records(self) -> bool:
        return self.mode == RECORD

    def use_records(self, why: str) -> None:
        """Name inputs by record from now on (for the rest of this run)."""
        if self.records:
            return
        self.mode, self.why = RECORD, why
        reservations.hold_by_text(self.folders)
        _RECORDS.add(str(self.folders.meta))
        log.warning("identity_by_record", instance=self.folders.instance, why=why,
                    action="inputs are named by a uid written down at their claim")  # fmt: skip

    def check_peers(self, lock_dir: Path, peers: tuple[PeerLease, ...]) -> None:
        """Switch to records if a live peer uses them, or sees a file under another
        number than this mount does (its lock file, whose number its lease carries)."""
        for p in peers:
            if p.expired or self.records:
                continue
            if p.identity == RECORD:
                self.use_records(f"instance {p.name} (host {p.host}) names inputs by "
                                 "record: every instance must")  # fmt: skip
            elif p.lock_ino:
                try:
                    mine = os.stat(lock_dir / f"{p.name}.lock").st_ino
                except OSError:
                    continue
                if mine != p.lock_ino:
                    self.use_records(f"host {p.host} sees {p.name}.lock as inode "
                                     f"{p.lock_ino}, this mount as {mine}: the hosts number "
                                     "files differently")  # fmt: skip

    def new_uid(self, st: os.stat_result) -> str:
        """The uid of a file no record names."""
        return uuid.uuid4().hex if self.records else input_uid(st)


# -- files given back to unprocessed/ (record mode) --------------------------------------
_RECORDS: set[str] = set()  # .folderd folders whose inputs this process names by record


def by_record(folders: Folders) -> bool:
    return str(folders.meta) in _RECORDS


def _note(folders: Folders, rel: str) -> str:
    key = hashlib.sha256(rel.encode(errors="surrogateescape")).hexdigest()[:32]
    return os.path.join(folders.meta, RETURNS_DIRNAME, key)


def note_return(folders: Folders, rel: str, uid: str, st: os.stat_result) -> None:
    """Before a file is renamed into unprocessed/ as `rel` (a shutdown, a requeue): its
    uid, for the next claim of that name on any host (`returned`)."""
    path = _note(folders, rel)
    tmp = f"{path}.{folders.instance}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(f"{uid}\n{st.st_size}\n{st.st_mtime_ns}\n".encode())
        os.replace(tmp, path)
    except OSError as exc:  # the file still goes back: claimed again, it is a new input
        log.warning("return_not_noted", path=rel, error=str(exc),
                    action="its next claim gives it a new uid")  # fmt: skip


def returned(folders: Folders, rel: str, st: os.stat_result) -> str | None:
    """The uid of the file now at unprocessed/`rel` if folderd gave it back there (the
    note's size and mtime still match), else None."""
    try:
        with open(_note(folders, rel), "rb") as f:
            uid, size, mtime = f.read(128).decode().split("\n")[:3]
    except (OSError, ValueError):
        return None
    if (size, mtime) != (str(st.st_size), str(st.st_mtime_ns)) or len(uid) != 32:
        return None
    return uid


def forget_return(folders: Folders, rel: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_note(folders, rel))
