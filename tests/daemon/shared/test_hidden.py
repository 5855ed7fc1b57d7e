"""What shared mode does in `.folderd/instances/` leaves no `.fuse_hidden*` file on sshfs:
clock probes made and removed, instances started and stopped cleanly, leases rewritten
while a peer on the same mount reads them. sshfs (FUSE without `hard_remove`, which sshfs 3
refuses) hides a file unlinked or replaced just after a close on that mount, and leaves the
hidden file there when the close's release races the hide (`daemon.shared.hidden`) — seen
with `-o dir_cache=no`, the option hosts sharing a folder need."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.shared import hidden
from daemon.shared.lease import Lease, fs_now, read_leases
from tests.daemon.shared.test_shared_sshfs import sshfs_mount

pytestmark = pytest.mark.integration

ROUNDS = 150


def _hidden(export: Path) -> list[str]:
    return sorted(str(p.relative_to(export)) for p in export.rglob(f"{hidden.PREFIX}*"))


@contextlib.contextmanager
def _busy(mnt: Path) -> Iterator[None]:
    """Two threads writing and reading 1 MiB files through the mount, as workers do."""
    stop = threading.Event()

    def churn(k: int) -> None:
        data = os.urandom(1 << 20)
        while not stop.is_set():
            (mnt / f"busy{k}").write_bytes(data)
            (mnt / f"busy{k}").read_bytes()

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def test_clock_probes_and_clean_stops_leave_no_fuse_hidden_file_on_sshfs(tmp_path: Path) -> None:
    with sshfs_mount(tmp_path, ("dir_cache=no",)) as mnt:  # as hosts sharing it must
        meta, export = mnt / ".folderd", tmp_path / "export"
        meta.mkdir()
        d = meta / "instances"
        d.mkdir()
        with _busy(mnt):  # workers reading and writing through the mount meanwhile
            clocks = [fs_now(d) for _ in range(ROUNDS)]  # each start reads the clock
            for i in range(ROUNDS // 2):  # instances starting and stopping cleanly
                lease = Lease(meta, f"i{i % 3}", 3.0, tmp_path / "deadline")
                assert lease.renew("running", 0, 0) and lease.renew("running", 0, 1)
                lease.release()
                assert lease.conflict is None
        assert clocks == sorted(clocks) and clocks[-1] > 0
        assert _hidden(export) == []  # before: dozens, each a probe's "t" or a lease
        assert sorted(p.name for p in d.iterdir()) == ["i0.lock", "i1.lock", "i2.lock"]


def test_hidden_files_a_same_mount_reader_causes_are_swept(tmp_path: Path) -> None:
    """A peer on the same mount reads a lease (open, read, close) as its holder replaces it:
    that one may be left hidden. Each renewal's sweep removes it; the leases stay."""
    with sshfs_mount(tmp_path, ("dir_cache=no",)) as mnt:
        meta, export = mnt / ".folderd", tmp_path / "export"
        meta.mkdir()
        holder = Lease(meta, "holder", 3.0, tmp_path / "holder.deadline")
        assert holder.renew("running", 0, 0)
        stop = threading.Event()
        reads: list[int] = []

        def read_all() -> None:
            while not stop.is_set():
                reads.append(len(read_leases(holder.dir, fs_now(holder.dir))))

        reader = threading.Thread(target=read_all)
        reader.start()
        try:
            for i in range(ROUNDS):
                assert holder.renew("running", 0, i), holder.conflict
        finally:
            stop.set()
            reader.join(30)
        assert min(reads) == 1 and holder.conflict is None
        hidden.sweep(holder.dir)
        assert _hidden(export) == []
        (lease,) = read_leases(holder.dir, fs_now(holder.dir))
        assert (lease.name, lease.processed, lease.expired) == ("holder", ROUNDS - 1, False)
        assert holder.renew("running", 0, ROUNDS), "its own lease intact after the sweep"
        holder.release()
        assert not holder.path.exists()
