"""Leases: how instances sharing a watch_dir know which of them are alive.

Each instance keeps `watch_dir/.folderd/instances/<name>.json`, rewritten (temp name, then
rename) every quarter of its `--lease`. Its *mtime* is the heartbeat, stamped by the shared
filesystem (on NFS, by the server), so a peer judges its age against the mtime of a file it
has just written there itself: host clocks may disagree, the filesystem's clock is the one
both see. A lease is expired once that age passes the lease's duration; only then may a
peer take over the instance's claims (`daemon.shared.instance`).

The holder judges its own lease by its monotonic clock instead: it writes, to a local file
beside its journal, the instant (CLOCK_MONOTONIC, the same in every process of the host)
until which its workers may commit results — well inside the lease, counted from *before*
the renewal that granted it. A frozen instance (SIGSTOP, a VM pause) wakes up past that
instant, and its workers refuse to commit (`may_commit`) until a renewal succeeds again.

Two live instances of one name must never both claim. On one host the kernel keeps them
apart: each holds `instances/<name>.lock` (flock) for its whole life, so a second start is
refused even if the lease file was deleted. Across hosts, where flock may not reach, the
holder notices a lease file it did not write: before each renewal it compares the file
with what its own last write left (a random token in it, its size, mtime and mode; not its
inode, which sshfs may renumber). A file deleted,
overwritten or chmod-ed by anyone else is a *conflict*: the instance stops committing and
claiming, for good, and says why (`/health`, the log) — another instance of its name may be
running, and only an operator can tell.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

from daemon.errors import DaemonError
from daemon.shared import hidden

log = structlog.get_logger(__name__)

INSTANCES_DIRNAME = "instances"  # under .folderd/
RENEW_FRACTION = 0.25  # renewed every quarter of the lease…
COMMIT_FRACTION = 0.75  # …and commits stop three quarters after the last renewal began
_DEADLINE = struct.Struct("d")


@dataclass(frozen=True, slots=True)
class PeerLease:
    """One lease file as a peer reads it."""

    name: str
    host: str
    pid: int
    lease_s: float
    started: float  # wall clock of the holder, for display only
    state: str  # what the holder says of itself: "running"
    claims: int  # files it holds in underprocess/<name>/, as it last said
    processed: int
    age_s: float  # by the shared filesystem's clock
    identity: str = "inode"  # how it names inputs (`daemon.identity`)
    lock_ino: int = 0  # the inode number its holder sees for its lock file

    @property
    def expired(self) -> bool:
        return self.age_s > self.lease_s

    def describe(self) -> str:
        return f"{self.name!r} (host {self.host}, PID {self.pid})"


def instances_dir(meta: Path) -> Path:
    return meta / INSTANCES_DIRNAME


def fs_now(directory: Path) -> float:
    """The shared filesystem's clock: the mtime of a symlink made there just now (never a
    file opened and removed: `daemon.shared.hidden`)."""
    return hidden.stamp(directory, f"{socket.gethostname()}-{os.getpid()}")


def read_leases(directory: Path, now_fs: float, skip: str = "") -> list[PeerLease]:
    """Every lease file in `directory` but `skip`'s, aged against `now_fs`."""
    out = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        name, dot, ext = entry.name.rpartition(".")
        if ext != "json" or not dot or name.startswith(".") or name == skip:
            continue
        try:
            with open(entry.path, "rb") as f:
                data = orjson.loads(f.read())
                mtime = os.fstat(f.fileno()).st_mtime
            out.append(_peer(name, data, max(0.0, now_fs - mtime)))
        except (OSError, ValueError, TypeError, KeyError):
            continue  # removed meanwhile, or half a file from another version: not a lease
    return sorted(out, key=lambda p: p.name)


def _peer(name: str, data: dict[str, Any], age: float) -> PeerLease:
    return PeerLease(
        name=name, host=str(data["host"]), pid=int(data["pid"]), lease_s=float(data["lease_s"]),
        started=float(data.get("started", 0)), state=str(data.get("state", "running")),
        claims=int(data.get("claims", 0)), processed=int(data.get("processed", 0)), age_s=age,
        identity=str(data.get("identity", "inode")), lock_ino=int(data.get("lock_ino", 0)),
    )  # fmt: skip


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _lock_instance(directory: Path, name: str) -> int:
    """Hold `<name>.lock` in `directory` (flock, for the process's life): the fd."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DaemonError(
            f"another instance named {name!r} is running on this host (PID {holder}, "
            f"holding {directory / (name + '.lock')}); give this one another --instance, "
            "or stop that one",
            exit_code=1,
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_mode)


class Lease:
    """This instance's own lease (loop thread only). Constructing it takes the instance's
    lock: DaemonError if another instance of the name holds it on this host."""

    def __init__(self, meta: Path, name: str, lease_s: float, deadline_path: Path) -> None:
        self.dir = instances_dir(meta)
        self.path = self.dir / f"{name}.json"
        self._lock_fd: int | None = _lock_instance(self.dir, name)
        self.lock_ino = os.fstat(self._lock_fd).st_ino  # as this host sees it: peers compare
        self.name = name
        self.lease_s = lease_s
        self.host = socket.gethostname()
        self.started = time.time()
        self.deadline_path = deadline_path
        self.renewed_at: float | None = None  # monotonic, taken before the last renewal
        self.renewals = 0
        self.failures = 0
        self.fs_clock = 0.0  # the mtime the last renewal got: the filesystem's "now"
        self.conflict: str | None = None  # why the lease file is not ours any more
        self._mine: tuple[str, tuple[int, ...]] | None = None  # as our last write left it
        self._deadline_fd: int | None = None

    @property
    def period(self) -> float:
        return self.lease_s * RENEW_FRACTION

    def due(self, now: float) -> bool:
        return self.renewed_at is None or now - self.renewed_at >= self.period

    def held(self, now: float) -> bool:
        """Whether commits are still safe by this host's monotonic clock."""
        if self.renewed_at is None or self.conflict is not None:
            return False
        return now < self.renewed_at + self.lease_s * COMMIT_FRACTION

    def renew(self, state: str, claims: int, processed: int, identity: str = "inode") -> bool:
        """Rewrite the lease file; on success move the commit deadline on. False (logged)
        if the filesystem refused: commits stop at the old deadline, peers take over; or if
        the file is not as this instance's last write left it (`conflict`): commits stop
        now, and the file is left as it is found."""
        # The lease runs from before the check of its file: an instance frozen inside that
        # check (a round trip or more on a network filesystem) wakes to a renewal that is
        # already late, and says so (`lease_lapsed`), instead of one counted from its waking.
        began = time.monotonic()
        if self.conflict is not None or self._lost():
            return False
        token = secrets.token_hex(8)
        data = {"host": self.host, "pid": os.getpid(), "lease_s": self.lease_s,
                "started": self.started, "state": state, "claims": claims,
                "processed": processed, "renewed": time.time(), "token": token,
                "identity": identity, "lock_ino": self.lock_ino}  # fmt: skip
        tmp = self.dir / f".{self.name}.json.{os.getpid()}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(data))
            os.replace(tmp, self.path)
            st = os.stat(self.path)
            self.fs_clock, self._mine = st.st_mtime, (token, _signature(st))
        except OSError as exc:
            self.failures += 1
            log.error("lease_renew_failed", path=str(self.path), error=str(exc),
                      action="commits stop as the lease runs out; peers take over")  # fmt: skip
            return False
        self.renewed_at = began
        self.renewals += 1
        self._write_deadline(began + self.lease_s * COMMIT_FRACTION)
        return True

    def _changed(self) -> bool:
        """Whether the lease file's lstat differs from what our last write left (or it is
        gone): then `_lost` reads it to tell how."""
        try:
            return self._mine is None or _signature(os.lstat(self.path)) != self._mine[1]
        except OSError:
            return True

    def _lost(self) -> bool:
        """Whether someone else deleted or changed the lease file since our last write
        (then `conflict` says how, the commit deadline is withdrawn, and it is logged)."""
        if self._mine is None:
            return False
        token, signature = self._mine
        try:
            with open(self.path, "rb") as f:
                raw = f.read(1 << 16)
                st = os.fstat(f.fileno())
        except FileNotFoundError:
            how = "was deleted"
        except OSError:
            return False  # the filesystem failing is not a conflict: renew() reports it
        else:
            try:
                data = orjson.loads(raw)
                theirs = (str(data["token"]), str(data["host"]), int(data["pid"]))
            except (ValueError, TypeError, KeyError):
                theirs = ("", "", 0)
            if theirs[0] == token and _signature(st) == signature:
                return False
            how = "was changed (overwritten, or its mode changed)"
            if theirs[0] != token and theirs[1:] != (self.host, os.getpid()) and theirs[2]:
                how = f"was overwritten by host {theirs[1]}, PID {theirs[2]}"
        self.conflict = (
            f"the lease file {self.path} {how} by someone else: another instance named "
            f"{self.name!r} may be running; this one stopped claiming and committing. Make "
            "sure only one runs under this name, then restart it"
        )
        self._write_deadline(0.0)
        log.error("lease_conflict", instance=self.name, path=str(self.path), how=how,
                  action="claiming and commits stopped until restarted")  # fmt: skip
        return True

    def _write_deadline(self, until: float) -> None:
        if self._deadline_fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._deadline_fd = os.open(self.deadline_path, flags, 0o644)
        os.pwrite(self._deadline_fd, _DEADLINE.pack(until), 0)

    def release(self) -> None:
        """A clean stop: the lease file goes (no claims are left; unless it is not ours),
        commits end now, the instance's lock is let go. The file is judged ours by its
        lstat, not read: on FUSE a file removed just after a read of it may be left behind
        (`daemon.shared.hidden`). Its size, mtime and mode as our last write left them
        (whole seconds on sshfs) is the check; the token is read only if they differ."""
        if self.conflict is None and (not self._changed() or not self._lost()):
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        if self._deadline_fd is not None:
            with contextlib.suppress(OSError):
                os.pwrite(self._deadline_fd, _DEADLINE.pack(0.0), 0)
            os.close(self._deadline_fd)
            self._deadline_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None


def may_commit(deadline_path: str) -> bool:
    """In a worker, just before a commit: whether the instance's lease still covers it."""
    try:
        with open(deadline_path, "rb") as f:
            raw = f.read(_DEADLINE.size)
    except OSError:
        return False
    return len(raw) == _DEADLINE.size and time.monotonic() < _DEADLINE.unpack(raw)[0]
