"""Leases: how instances sharing a watch_dir know which of them are alive.

Each instance keeps `watch_dir/.folderd/instances/<name>.json`, rewritten (temp name, then
rename) every quarter of its `--lease`. Its *mtime* is the heartbeat, stamped by the shared
filesystem (on NFS, by the server), so a peer judges its age against the mtime of a file it
has just written there itself: host clocks may disagree, the filesystem's clock is the one
both see. A lease is expired once that age passes the lease's duration; only then may a
peer take over the instance's claims (`daemon.shared`).

The holder judges its own lease by its monotonic clock instead: it writes, to a local file
beside its journal, the instant (CLOCK_MONOTONIC, the same in every process of the host)
until which its workers may commit results — well inside the lease, counted from *before*
the renewal that granted it. A frozen instance (SIGSTOP, a VM pause) wakes up past that
instant, and its workers refuse to commit (`may_commit`) until a renewal succeeds again.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog

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

    @property
    def expired(self) -> bool:
        return self.age_s > self.lease_s

    def describe(self) -> str:
        return f"{self.name!r} (host {self.host}, PID {self.pid})"


def instances_dir(meta: Path) -> Path:
    return meta / INSTANCES_DIRNAME


def fs_now(directory: Path) -> float:
    """The shared filesystem's clock: the mtime of a file written there just now."""
    probe = directory / f".clock-{socket.gethostname()}-{os.getpid()}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, b"t")
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


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
    )  # fmt: skip


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Lease:
    """This instance's own lease (loop thread only)."""

    def __init__(self, meta: Path, name: str, lease_s: float, deadline_path: Path) -> None:
        self.dir = instances_dir(meta)
        self.path = self.dir / f"{name}.json"
        self.name = name
        self.lease_s = lease_s
        self.host = socket.gethostname()
        self.started = time.time()
        self.deadline_path = deadline_path
        self.renewed_at: float | None = None  # monotonic, taken before the last renewal
        self.renewals = 0
        self.failures = 0
        self.fs_clock = 0.0  # the mtime the last renewal got: the filesystem's "now"
        self._deadline_fd: int | None = None

    @property
    def period(self) -> float:
        return self.lease_s * RENEW_FRACTION

    def due(self, now: float) -> bool:
        return self.renewed_at is None or now - self.renewed_at >= self.period

    def held(self, now: float) -> bool:
        """Whether commits are still safe by this host's monotonic clock."""
        if self.renewed_at is None:
            return False
        return now < self.renewed_at + self.lease_s * COMMIT_FRACTION

    def renew(self, state: str, claims: int, processed: int) -> bool:
        """Rewrite the lease file; on success move the commit deadline on. False (logged)
        if the filesystem refused: commits stop at the old deadline, peers take over."""
        began = time.monotonic()
        data = {"host": self.host, "pid": os.getpid(), "lease_s": self.lease_s,
                "started": self.started, "state": state, "claims": claims,
                "processed": processed, "renewed": time.time()}  # fmt: skip
        tmp = self.dir / f".{self.name}.json.{os.getpid()}"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(data))
            os.replace(tmp, self.path)
            self.fs_clock = os.stat(self.path).st_mtime
        except OSError as exc:
            self.failures += 1
            log.error("lease_renew_failed", path=str(self.path), error=str(exc),
                      action="commits stop as the lease runs out; peers take over")  # fmt: skip
            return False
        self.renewed_at = began
        self.renewals += 1
        self._write_deadline(began + self.lease_s * COMMIT_FRACTION)
        return True

    def _write_deadline(self, until: float) -> None:
        if self._deadline_fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._deadline_fd = os.open(self.deadline_path, flags, 0o644)
        os.pwrite(self._deadline_fd, _DEADLINE.pack(until), 0)

    def release(self) -> None:
        """A clean stop: the lease file goes (no claims are left), commits end now."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        if self._deadline_fd is not None:
            with contextlib.suppress(OSError):
                os.pwrite(self._deadline_fd, _DEADLINE.pack(0.0), 0)
            os.close(self._deadline_fd)
            self._deadline_fd = None


def may_commit(deadline_path: str) -> bool:
    """In a worker, just before a commit: whether the instance's lease still covers it."""
    try:
        with open(deadline_path, "rb") as f:
            raw = f.read(_DEADLINE.size)
    except OSError:
        return False
    return len(raw) == _DEADLINE.size and time.monotonic() < _DEADLINE.unpack(raw)[0]
