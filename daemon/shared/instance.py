"""Shared mode: several daemons, one watch_dir, the shared filesystem as the only broker.

An instance claims a file by one rename into its own `underprocess/<instance>/`: of several
racing for one file exactly one rename succeeds, the others find it gone and move on
(counted as lost races, never logged as errors). Each keeps a lease (`daemon.shared.lease`);
when a peer's lease has expired by the filesystem's clock, any live instance takes the
peer's claims over — each file by one rename into its own `underprocess/<instance>/`,
under the same name, so exactly once however many instances try — runs them itself, and
removes the peer's temp results.

An input's identity must survive that: the instance that takes a claim over has its own
journal and knows nothing of the first. So in shared mode an input's uid is one every
host finds for the same file (`daemon.identity`: from its inode where the mount's inode
numbers can be trusted, else written down at its claim), and a takeover keeps both the
uid and the name. A commit of the frozen first instance that races the takeover writes
the same names with the same uid: it replaces, never adds a second summary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import structlog

from config.casts import instance_name
from config.settings import Settings
from daemon.errors import DaemonError
from daemon.fstype import advice
from daemon.identity import INODE, Identity, input_uid, probe
from daemon.journal import Journal
from daemon.moves import transition
from daemon.recovery import walk_files
from daemon.shared import attempts, hidden, reservations
from daemon.shared.foldercount import FolderCount, FolderCounter
from daemon.shared.lease import Lease, PeerLease, read_leases
from daemon.states import FileRef, Folders, State
from formats.names import shown

log = structlog.get_logger(__name__)

COUNT_INTERVAL_S = 5.0  # the shared folders are walked at most this often (its own thread)
BLIND_AFTER = 20  # files peers processed while this instance saw none: its view is stale…
BLIND_SILENCE_S = 2 * COUNT_INTERVAL_S  # …for this long at least (its folder count lags)

__all__ = ["Shared", "SharedView", "input_uid", "shared_folders"]


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
    conflict: str | None = None  # the lease file is not ours: claiming stopped (see lease.py)
    identity: str = INODE  # how inputs are named (`daemon.identity`)
    identity_why: str | None = None  # why by record
    mount: tuple[str, ...] = ()  # what the mount's options lack (`daemon.fstype.advice`)
    blind: str | None = None  # peers work while this instance sees nothing (`Sight`)

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
            "identity": {"mode": self.identity, "why": self.identity_why,
                         "mount": list(self.mount)},
            "blind": self.blind,
        }  # fmt: skip

    def _folders(self, now: float) -> dict[str, Any] | None:
        c = self.folders
        if c is None:
            return None  # not counted yet
        return {"files": dict(c.files), "age_s": round(now - c.at, 3), "took_s": c.took_s}


class Sight:
    """Whether this instance sees the work its peers do: files they process come from the
    unprocessed/ it lists too. A stale directory listing (sshfs's own cache, NFS's
    attribute cache) leaves an instance idle and silent while its peers are busy; this
    says so (`Shared.blind`, the `peers` check of /health) instead."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}  # peer -> processed, as its lease last said
        self.unseen = 0  # files peers processed since this instance last saw one
        self.since: float | None = None  # monotonic, when it last saw one
        self.blind: str | None = None

    def update(self, now: float, peers: tuple[PeerLease, ...], busy: bool) -> None:
        """At each renewal: `busy`, whether this instance had files in sight since."""
        done = 0
        for p in peers:
            before = self.seen.get(p.name)
            if before is not None and p.processed > before:
                done += p.processed - before
            self.seen[p.name] = p.processed
        if busy or self.since is None:
            self.unseen, self.since = 0, now
            if self.blind is not None:
                self.blind = None
                log.info("shared_view_fresh", unprocessed="files seen again")
            return
        self.unseen += done
        if self.unseen >= BLIND_AFTER and now - self.since >= BLIND_SILENCE_S and not self.blind:
            self.blind = (
                f"peers processed {self.unseen} file(s) in the last {now - self.since:.0f} s "
                "while this instance saw none in unprocessed/: its directory listings may be "
                "stale (sshfs: mount with -o dir_cache=no; NFS: lookupcache=positive, "
                "actimeo=1)"
            )
            log.warning("shared_view_stale", files_by_peers=self.unseen,
                        silent_s=round(now - self.since, 1), why=self.blind)  # fmt: skip


class Shared:
    """This instance's part in shared mode (loop thread only)."""

    def __init__(self, folders: Folders, lease_s: float, journal: Journal) -> None:
        self.folders = folders
        self.name = folders.instance
        self.journal = journal
        deadline = folders.commit_deadline
        if deadline is None:
            raise ValueError("shared mode needs Folders with an instance name")
        self.identity = Identity(folders, probe(folders.meta))
        self.mount = tuple(advice(folders.root, lease_s))
        self.lease = Lease(folders.meta, self.name, lease_s, deadline)
        self.takeovers = 0
        self.lost_races = 0
        self.peers: tuple[PeerLease, ...] = ()
        self.peers_at = time.monotonic()
        self.orphaned: dict[str, int] = {}
        self.claims = self.processed = 0
        self.sight = Sight()
        self._lapsed = False
        self._seen: tuple[object, ...] = ()  # what it saw at the last renewal (`tick`)
        self.counter = FolderCounter(folders, COUNT_INTERVAL_S)
        # The lease before any claim is touched (recovery included): it makes them ours.
        if not self.renew():
            raise DaemonError(f"cannot write the lease {self.lease.path}")
        self.peers = tuple(read_leases(self.lease.dir, self.lease.fs_clock, skip=self.name))
        self.identity.check_peers(self.lease.dir, self.peers)
        stale = reservations.drop_stale(folders)
        log.info("lease_taken", instance=self.name, lease_s=self.lease.lease_s,
                 path=str(self.lease.path), stale_names_dropped=stale,
                 identity=self.identity.mode, identity_why=self.identity.why)  # fmt: skip
        for line in self.mount:
            log.warning("mount_options", path=str(folders.root), advice=line)
        self.counter.start()

    @property
    def conflict(self) -> str | None:
        """Why this instance must not claim (its lease file is not its own), or None."""
        return self.lease.conflict

    def renew(self) -> bool:
        return self.lease.renew("running", self.claims, self.processed, self.identity.mode)

    def lost_race(self, rel: str) -> None:
        self.lost_races += 1
        log.debug("claim_lost", path=rel, state=State.QUEUED.value)

    def tick(self, now: float, counts: dict[str, int]) -> list[FileRef]:
        """Renew the lease when due, then take over the claims of expired peers: the files
        taken over, now this instance's claims (to run, or fail if out of attempts)."""
        self.claims = counts["processing"] + counts["waiting"]
        self.processed = counts["processed"]
        if self.lease.conflict is not None:
            return []  # nothing more is claimed, committed or renewed: see daemon.shared.lease
        awake = time.monotonic()  # not `now`: the loop may have been frozen since it read it
        renewed = self.lease.renewed_at
        if renewed is not None and not self.lease.held(awake) and not self._lapsed:
            self._lapsed = True
            log.error("lease_lapsed", instance=self.name, silent_s=round(awake - renewed, 3),
                      action="no commits till renewed; peers may take over its claims")  # fmt: skip
        if not self.lease.due(now):
            return []
        if not self.renew():
            return []
        if self._lapsed:
            self._lapsed = False
            log.warning("lease_renewed_late", instance=self.name,
                        action="claims a peer took over are dropped when next touched")  # fmt: skip
        self.peers = tuple(read_leases(self.lease.dir, self.lease.fs_clock, skip=self.name))
        self.peers_at = time.monotonic()
        self.identity.check_peers(self.lease.dir, self.peers)
        # In sight since the last renewal: files queued here, claimed, lost to a peer, or
        # a change in what this instance's listings of the shared folders show.
        count = self.counter.last
        seen = (self.lost_races, counts["processed"], counts["failed"], self.claims,
                tuple(count.files.values()) if count else ())  # fmt: skip
        busy = counts["queued"] > 0 or seen != self._seen
        self._seen = seen
        self.sight.update(self.peers_at, self.peers, busy)
        self.orphaned = {}
        self._sweep()
        taken: list[FileRef] = []
        for peer in self.peers:
            if peer.expired:
                taken += self._take_over(peer)
        return taken

    def _take_over(self, peer: PeerLease) -> list[FileRef]:
        """Each claim of `peer` renamed into this instance's folder under its own name,
        with the uid it was claimed under: its results, if the frozen peer's commit lands
        after all, are the same files of the same input."""
        theirs = replace(self.folders, instance=peer.name, state_dir=None)
        top = theirs.of(State.CLAIMED)
        if not top.is_dir():
            return []
        taken: list[FileRef] = []
        left = 0
        for rel in walk_files(top):
            if rel.rpartition("/")[2].startswith(".fuse_hidden"):
                continue  # FUSE's stand-in for a file removed while open: nobody's input
            try:
                st = os.lstat(top / rel)
                uid = self._uid_of_claim(rel, st)
                n = attempts.carried(self.folders, uid) + 1  # the one it was on
                ref = FileRef(uid, rel, State.CLAIMED, n, rel, st.st_size, st.st_ino)
                transition(self.folders, self.journal, ref, State.CLAIMED, source=theirs,
                           reason="taken over", instance=peer.name,
                           lease_age_s=round(peer.age_s, 3))  # fmt: skip
                attempts.carry(self.folders, uid, n)
                if not os.path.lexists(ref.path(self.folders)):
                    # frozen between the rename and the note, it lost the claim to a peer
                    # that may have finished it (and forgotten its note) meanwhile: a note
                    # written now would outlive the input
                    attempts.forget(self.folders, uid)
                reservations.adopt(self.folders, ref.rel, uid)
            except FileNotFoundError:
                continue  # another instance's rename won (or the peer woke and moved it)
            except (OSError, DaemonError) as exc:
                left += 1
                log.error("takeover_failed", path=rel, instance=peer.name, error=str(exc))
                continue
            taken.append(ref)
        if taken:
            self.takeovers += len(taken)
            _clear(theirs.tmp)
            _clear(theirs.uploads)
            log.warning("instance_taken_over", instance=peer.name, host=peer.host, pid=peer.pid,
                        files=len(taken), lease_age_s=round(peer.age_s, 3))  # fmt: skip
        if left:
            self.orphaned[peer.name] = left
        return taken

    def _uid_of_claim(self, rel: str, st: os.stat_result) -> str:
        """The uid a peer claimed `rel` under: its text reservation says; a hard link is
        made only where inode numbers name files (then the inode does); failing both, the
        uid of a summary already committed under the name."""
        uid = reservations.uid_of(self.folders, rel)
        if uid is not None:
            return uid
        if not self.identity.records:
            return input_uid(st)
        committed = _summary_uid(self.folders.summary_path(rel), rel)
        return committed or self.identity.new_uid(st)

    def _sweep(self) -> None:
        """The `.fuse_hidden*` files sshfs may leave (`daemon.shared.hidden`) in the leases'
        folder (a peer on this mount read a lease as it was replaced) and in this
        instance's own temp folders (a worker removed a temp result just after its close:
        a commit withheld, an output a sink took)."""
        f = self.folders
        if n := hidden.sweep(self.lease.dir, f.tmp, f.uploads):
            log.info("hidden_files_removed", files=n, why="FUSE left them (sshfs)")

    def view(self) -> SharedView:
        lease = self.lease
        return SharedView(
            instance=self.name, host=lease.host, lease_s=lease.lease_s,
            lease_held=lease.held(time.monotonic()), renewed_at=lease.renewed_at,
            renewals=lease.renewals, renew_failures=lease.failures, takeovers=self.takeovers,
            lost_races=self.lost_races, peers=self.peers, peers_at=self.peers_at,
            claims=self.claims, processed=self.processed, orphaned=dict(self.orphaned),
            folders=self.counter.last, conflict=lease.conflict, identity=self.identity.mode,
            identity_why=self.identity.why, mount=self.mount, blind=self.sight.blind,
        )  # fmt: skip

    def stop(self) -> None:
        self.counter.stop()
        self._sweep()  # its workers have all ended
        self.lease.release()
        log.info("lease_released", instance=self.name, renewals=self.lease.renewals,
                 takeovers=self.takeovers, lost_races=self.lost_races)  # fmt: skip


def _summary_uid(path: str, rel: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("source") == shown(rel)
    return data.get("uid") if ok and isinstance(data.get("uid"), str) else None


def _clear(d: Path) -> None:
    """A dead peer's temp results or staged uploads: never complete, never needed."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(d):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
