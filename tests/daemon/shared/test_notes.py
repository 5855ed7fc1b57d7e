"""What shared mode writes into `.folderd/instances/` leaves nothing behind on sshfs: leases
rewritten while a peer on the same mount reads them, clock probes made and removed, leases
removed at a clean stop. sshfs (FUSE without `hard_remove`, which sshfs 3 refuses) hides a
file unlinked or replaced just after a close on that mount as `.fuse_hidden*`, and leaves
it there when the close's release races the hide (`daemon.shared.notes`) — seen with
`-o dir_cache=no`, the option hosts sharing a folder need, never without it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from daemon.shared.lease import Lease, fs_now, read_leases
from tests.daemon.shared.test_shared_sshfs import sshfs_mount

pytestmark = pytest.mark.integration

ROUNDS = 150


def _hidden(export: Path) -> list[str]:
    return sorted(str(p.relative_to(export)) for p in export.rglob(".fuse_hidden*"))


def test_leases_and_clock_probes_leave_no_fuse_hidden_file_on_sshfs(tmp_path: Path) -> None:
    with sshfs_mount(tmp_path, ("dir_cache=no",)) as mnt:  # as hosts sharing it must
        meta = mnt / ".folderd"
        meta.mkdir()
        peer = Lease(meta, "peer", 3.0, tmp_path / "peer.deadline")
        assert peer.renew("running", 0, 0)
        stop = threading.Event()
        reads = []

        def read_all() -> None:  # a peer instance on the same mount, reading at each renewal
            while not stop.is_set():
                reads.append(len(read_leases(peer.dir, fs_now(peer.dir))))

        reader = threading.Thread(target=read_all)
        reader.start()
        try:
            for i in range(ROUNDS):  # rewritten while read (every quarter lease, in life)
                assert peer.renew("running", 0, i), peer.conflict
        finally:
            stop.set()
            reader.join(30)
        assert peer.conflict is None and min(reads) == 1
        clocks = [fs_now(peer.dir) for _ in range(ROUNDS)]  # each start reads the clock
        assert clocks == sorted(clocks)
        for i in range(ROUNDS // 5):  # instances starting and stopping cleanly
            lease = Lease(meta, f"i{i}", 3.0, tmp_path / f"i{i}.deadline")
            assert lease.renew("running", 0, 0)
            lease.release()
        (data,) = read_leases(peer.dir, fs_now(peer.dir))
        assert (data.name, data.processed) == ("peer", ROUNDS - 1)
        peer.release()
        export = tmp_path / "export"
        # A hide still under way is undone by the release of its file: wait for those.
        deadline = time.monotonic() + 10
        while _hidden(export) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _hidden(export), _hidden(export)
        assert sorted(p.name for p in (export / ".folderd" / "instances").iterdir()) == sorted(
            ["peer.lock", *(f"i{i}.lock" for i in range(ROUNDS // 5))]
        ), "leases, probes and temps all gone; the locks stay, as on any filesystem"


def test_off_fuse_a_lease_is_a_file_and_either_form_is_read(tmp_path: Path) -> None:
    """On a local filesystem (and NFS: a symlink's attributes may come from the client's
    cache, a file's are revalidated at open) the lease stays a regular file; a symlink
    lease, as an instance on FUSE writes it, reads the same."""
    meta = tmp_path / ".folderd"
    lease = Lease(meta, "here", 3.0, tmp_path / "here.deadline")
    assert lease.renew("running", 2, 5)
    assert lease.path.is_file() and not lease.path.is_symlink()
    there = lease.dir / "there.json"
    there.symlink_to(lease.path.read_text().replace('"claims":2', '"claims":7'))
    now = fs_now(lease.dir)
    assert [(p.name, p.claims, p.expired) for p in read_leases(lease.dir, now)] == [
        ("here", 2, False),
        ("there", 7, False),
    ]
    lease.release()
    assert not lease.path.exists() and [p.name for p in read_leases(lease.dir, now)] == ["there"]
