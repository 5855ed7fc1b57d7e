"""A source on a filesystem whose metadata cannot be trusted: sshfs (FUSE + SFTP) gives
mtimes in whole seconds, a ctime that is the mtime and made-up inode numbers, so a file
rewritten with the same size and mtime second looks unchanged. A source with `hash: true`
still finds the new version; one without cannot (as the manual says)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.fstype import fs_type
from tests.conftest import DaemonProcess, Queue, sha256_of
from tests.daemon.shared.test_shared_sshfs import sshfs_mount
from tests.daemon.sources_helpers import sources_config, version, wait_rescans, wait_version

pytestmark = pytest.mark.integration


def test_only_a_hashed_source_sees_a_rewrite_with_the_same_size_and_mtime_second(
    queue: Queue, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    (tmp_path / "remote").mkdir()
    with sshfs_mount(tmp_path / "remote") as mnt:
        assert fs_type(mnt) == "fuse.sshfs"
        for name in ("plain", "hashed"):
            (mnt / name).mkdir()
            (mnt / name / "f.log").write_text("aaaa\n")
        sources = [{"name": n, "path": str(mnt / n), "hash": n == "hashed", "rescan_s": 0.5}
                   for n in ("plain", "hashed")]  # fmt: skip
        d = start_daemon("--config", str(sources_config(tmp_path / "c.json", sources)))
        wait_version(queue, "plain", "f.log", 1)
        wait_version(queue, "hashed", "f.log", 1)
        for name in ("plain", "hashed"):
            f = mnt / name / "f.log"
            before = os.stat(f)
            with f.open("r+b") as h:
                h.write(b"bbbb\n")
            os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
            after = os.stat(f)
            same = (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino)
            assert same == (before.st_size, before.st_mtime_ns, before.st_ctime_ns,
                            before.st_ino), "sshfs shows the rewrite"  # fmt: skip
        h2 = wait_version(queue, "hashed", "f.log", 2)
        assert h2["sha256"] == sha256_of(mnt / "hashed" / "f.log")
        wait_rescans(d, 4)
        assert version(queue, "plain", "f.log") == 1  # its metadata cannot tell
        d.signal(15)
        d.wait_exit()
