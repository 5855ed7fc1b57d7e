"""Who runs on a watch_dir: the checks that refuse a start, before anything is touched.

A daemon without --shared holds `.folderd/lock` exclusively; shared instances hold it
shared (`daemon.recovery.WatchDirLock`), so on one host the kernel keeps the two kinds
apart. Across hosts (flock may not lock across NFS clients) the leases do: a daemon without
--shared refuses to start while any shared instance's lease is current, and an instance
refuses to start while a live one holds its name.
"""

from __future__ import annotations

import os
import socket

from daemon.errors import DaemonError
from daemon.fstype import fs_type, network_fs
from daemon.shared.lease import PeerLease, fs_now, instances_dir, pid_alive, read_leases
from daemon.states import Folders, State


def refuse_shared_start(folders: Folders) -> None:
    """In shared mode, before anything is touched: refuse a journal on a network
    filesystem, a same-named live instance, and leftovers of a non-shared daemon."""
    if folders.state_dir is None:
        kind = fs_type(folders.meta)
        if network_fs(kind):
            raise DaemonError(
                f"--shared: the journal would live on a {kind} filesystem ({folders.journal}), "
                "where SQLite's WAL mode does not work; give this instance a local "
                "--state-dir (e.g. /var/lib/folderd)"
            )
    top = folders.root / State.CLAIMED.value
    strays = [e.name for e in os.scandir(top) if not e.is_dir(follow_symlinks=False)]
    if strays:
        raise DaemonError(
            f"{top} holds files of a daemon that ran without --shared ({strays[0]!r}…); "
            "start it once without --shared to recover them, then in shared mode"
        )
    d = instances_dir(folders.meta)
    d.mkdir(exist_ok=True)
    for peer in read_leases(d, fs_now(d)):
        if peer.name != folders.instance or peer.expired:
            continue
        if peer.host == socket.gethostname() and not pid_alive(peer.pid):
            continue  # it died here: this start recovers its claims
        raise DaemonError(
            f"another instance named {peer.name!r} is alive on {folders.root}: host "
            f"{peer.host}, PID {peer.pid} (lease renewed {peer.age_s:.0f} s ago); give this "
            "one another --instance, or stop that one",
            exit_code=1,
        )


def live_shared(folders: Folders) -> list[PeerLease]:
    """Shared instances whose lease is current: a daemon without --shared must not start."""
    d = instances_dir(folders.meta)
    if not d.is_dir() or not any(d.glob("*.json")):
        return []
    return [p for p in read_leases(d, fs_now(d)) if not p.expired]
