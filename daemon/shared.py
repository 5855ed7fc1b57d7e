"""Shared mode: several daemons, one watch_dir, the shared filesystem as the only broker.

An instance claims a file by one rename into its own `underprocess/<instance>/`: of several
racing for one file exactly one rename succeeds, the others find it gone and move on
(counted as lost races, never logged as errors). Each keeps a lease (`daemon.lease`);
when a peer's lease has expired by the filesystem's clock, any live instance takes the
peer's claims back to unprocessed/ — each file by one rename, so exactly once however many
instances try — and removes the peer's temp results.

An input's identity must survive that: the instance that claims it again has its own
journal and knows nothing of the first. So in shared mode an input's uid is derived from
the file itself (`input_uid`): inode, size and mtime, which a rename keeps and any write
changes. The claim that follows a takeover computes the same uid, finds results under its
name to be its own (`daemon.moves.free_name`) and replaces them, never adds a second
summary, even if the frozen first instance's commit raced it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from config.settings import Settings, instance_name
from daemon import attempts, names
from daemon.errors import DaemonError
from daemon.foldercount import FolderCount, FolderCounter
from daemon.lease import Lease, PeerLease, read_leases
from daemon.moves import transition
from daemon.recovery import walk_files
from daemon.states import FileRef, Folders, State

log = structlog.get_logger(__name__)

COUNT_INTERVAL_S = 5.0  # the shared folders are walked at most this often (its own thread)


def input_uid(st: os.stat_result) -> str:
    """An input's identity in shared mode, the same on every instance and after a takeover.

    inode + size + mtime_ns: a rename keeps all three, so the file claimed again after a
    takeover is the same input; a rewrite changes mtime (and so the identity: new bytes are
    a new input). NFS gives every client the server's inode number and mtime; st_dev is
    left out because each client numbers its mounts its own way.
    """
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def shared_folders(settings: Settings) -> Folders:
    """The folders of this daemon: per-instance claims, temps and journal in shared mode."""
    root, results = settings.watch_dir.resolve(), settings.results_dir.resolve()
    if not settings.shared:
        if settings.instance or settings.state_dir:
            raise DaemonError("--instance and --state-dir only mean something with --shared")
        return Folders(root, results)
    try:
        name = instance_name(settings.instance or socket.gethostname())
    except ValueError as exc:
        raise DaemonError(f"--instance: the host name cannot be an instance name ({exc}); "
                          "give one with --instance NAME") from None  # fmt: skip
    state_dir = settings.state_dir.resolve() if settings.state_dir else None
    return Folders(root, results, instance=name, state_dir=state_dir)


@dataclass(frozen=True, slots=True)
class SharedView:
    """Shared mode as the dashboard reads it (part of the loop's Snapshot)."""

    instance: str
    host: str
    lease_s: float
    lease_held: bool
    renewed_at: float | None  # monotonic
    renewals: int
    renew_failures: int
    takeovers: int  # files taken back from expired peers by this instance
    lost_races: int  # claims a peer's rename won
    peers: tuple[PeerLease, ...]  # as of `peers_at`
    peers_at: float  # monotonic
    claims: int  # files this instance holds in underprocess/<instance>/
    processed: int
    orphaned: dict[str, int] = field(default_factory=dict)  # expired peer -> claims left
    folders: FolderCount | None = None  # files in the shared folders, all instances
    conflict: str | None = None  # the lease file is not ours: claiming stopped (daemon.lease)

    def as_dict(self) -> dict[str, Any]:
        now = time.monotonic()
        since = now - self.peers_at
        age = round(now - self.renewed_at, 3) if self.renewed_at else None
        state = "conflict" if self.conflict else "running" if self.lease_held else "lapsed"
        me = {"name": self.instance, "host": self.host, "pid": os.getpid(), "self": True,
              "lease_s": self.lease_s, "state": state, "lease_age_s": age,
              "claims": self.claims, "processed": self.processed}  # fmt: skip
        peers = [
            {"name": p.name, "host": p.host, "pid": p.pid, "self": False, "lease_s": p.lease_s,
             "lease_age_s": round(p.age_s + since, 3), "claims": p.claims,
             "processed": p.processed,
             "state": "expired" if p.age_s + since > p.lease_s else p.state}
            for p in self.peers
        ]  # fmt: skip
        return {
            "instance": self.instance, "lease_s": self.lease_s, "renewals": self.renewals,
            "renew_failures": self.renew_failures, "takeovers": self.takeovers,
            "lost_races": self.lost_races, "orphaned": dict(self.orphaned),
            "instances": [me, *peers], "folders": self._folders(now), "conflict": self.conflict,
        }  # fmt: skip

    def _folders(self, now: float) -> dict[str, Any] | None:
        c = self.folders
        if c is None:
            return None  # not counted yet
        return {"files": dict(c.files), "age_s": round(now - c.at, 3), "took_s": c.took_s}


class Shared:
    """This instance's part in shared mode (loop thread only)."""

    def __init__(self, folders: Folders, lease_s: float) -> None:
        self.folders = folders
        self.name = folders.instance
        deadline = folders.commit_deadline
        if deadline is None:
            raise ValueError("shared mode needs Folders with an instance name")
        self.lease = Lease(folders.meta, self.name, lease_s, deadline)
        self.takeovers = 0
        self.lost_races = 0
        self.peers: tuple[PeerLease, ...] = ()
        self.peers_at = time.monotonic()
        self.orphaned: dict[str, int] = {}
        self.claims = self.processed = 0
        self._lapsed = False
        self.counter = FolderCounter(folders, COUNT_INTERVAL_S)
        # The lease before any claim is touched (recovery included): it makes them ours.
        if not self.lease.renew("running", 0, 0):
            raise DaemonError(f"cannot write the lease {self.lease.path}")
        stale = names.drop_stale(folders)
        log.info("lease_taken", instance=self.name, lease_s=self.lease.lease_s,
                 path=str(self.lease.path), stale_names_dropped=stale)  # fmt: skip
        self.counter.start()

    @property
    def conflict(self) -> str | None:
        """Why this instance must not claim (its lease file is not its own), or None."""
        return self.lease.conflict

    def lost_race(self, rel: str) -> None:
        self.lost_races += 1
        log.debug("claim_lost", path=rel, state=State.QUEUED.value)

    def tick(self, now: float, counts: dict[str, int]) -> None:
        """Renew the lease when due, then take over the claims of expired peers."""
        self.claims = counts["processing"] + counts["waiting"]
        self.processed = counts["processed"]
        if self.lease.conflict is not None:
            return  # nothing more is claimed, committed or renewed: see daemon.lease
        if self.lease.renewed_at is not None and not self.lease.held(now) and not self._lapsed:
            self._lapsed = True
            log.error("lease_lapsed", instance=self.name,
                      silent_s=round(now - self.lease.renewed_at, 3),
                      action="no commits till renewed; peers may take over its claims")  # fmt: skip
        if not self.lease.due(now):
            return
        if not self.lease.renew("running", self.claims, self.processed):
            return
        if self._lapsed:
            self._lapsed = False
            log.warning("lease_renewed_late", instance=self.name,
                        action="claims a peer took over are dropped when next touched")  # fmt: skip
        self.peers = tuple(read_leases(self.lease.dir, self.lease.fs_clock, skip=self.name))
        self.peers_at = time.monotonic()
        self.orphaned = {}
        for peer in self.peers:
            if peer.expired:
                self._take_over(peer)

    def _take_over(self, peer: PeerLease) -> None:
        theirs = replace(self.folders, instance=peer.name, state_dir=None)
        top = theirs.of(State.CLAIMED)
        if not top.is_dir():
            return
        moved, left = 0, 0
        for rel in walk_files(top):
            try:
                st = os.lstat(top / rel)
                uid = input_uid(st)
                n = attempts.carried(self.folders, uid) + 1  # the one it was on
                ref = FileRef(uid, rel, State.CLAIMED, n, rel, st.st_size, st.st_ino)
                transition(theirs, None, ref, State.QUEUED, reason="taken over",
                           instance=peer.name, lease_age_s=round(peer.age_s, 3))  # fmt: skip
                attempts.carry(self.folders, uid, n)
            except FileNotFoundError:
                continue  # another instance's rename won (or the peer woke and moved it)
            except OSError as exc:
                left += 1
                log.error("takeover_failed", path=rel, instance=peer.name, error=str(exc))
                continue
            moved += 1
        if moved:
            self.takeovers += moved
            _clear(theirs.tmp)
            _clear(theirs.uploads)
            log.warning("instance_taken_over", instance=peer.name, host=peer.host,
                        pid=peer.pid, files=moved, lease_age_s=round(peer.age_s, 3))  # fmt: skip
        if left:
            self.orphaned[peer.name] = left

    def view(self) -> SharedView:
        lease = self.lease
        return SharedView(
            instance=self.name, host=lease.host, lease_s=lease.lease_s,
            lease_held=lease.held(time.monotonic()), renewed_at=lease.renewed_at,
            renewals=lease.renewals, renew_failures=lease.failures, takeovers=self.takeovers,
            lost_races=self.lost_races, peers=self.peers, peers_at=self.peers_at,
            claims=self.claims, processed=self.processed, orphaned=dict(self.orphaned),
            folders=self.counter.last, conflict=lease.conflict,
        )  # fmt: skip

    def stop(self) -> None:
        self.counter.stop()
        self.lease.release()
        log.info("lease_released", instance=self.name, renewals=self.lease.renewals,
                 takeovers=self.takeovers, lost_races=self.lost_races)  # fmt: skip


def _clear(d: Path) -> None:
    """A dead peer's temp results or staged uploads: never complete, never needed."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(d):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
