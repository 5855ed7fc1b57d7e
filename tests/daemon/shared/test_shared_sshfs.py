"""Shared mode over a real network filesystem: sshfs (FUSE + SFTP) to an sshd on this
machine, three instances on one mount, polling as on NFS, journals on the local disk."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.fstype import fs_type, network_fs
from tests.conftest import DaemonProcess, Queue, assert_exactly_once, wait_until
from tests.sinks.servers import free_port

pytestmark = pytest.mark.integration

TOOLS = ("sshfs", "sshd", "ssh-keygen")


def _tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


def _fusermount() -> str | None:
    return _tool("fusermount3") or _tool("fusermount")


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[Queue]:
    """The test's watch_dir and results on an sshfs mount of a folder on this disk."""
    with sshfs_mount(tmp_path) as mnt:
        yield Queue(mnt)


@contextlib.contextmanager
def sshfs_mount(tmp_path: Path, options: tuple[str, ...] = ()) -> Iterator[Path]:
    """An sshfs mount (FUSE + SFTP to an sshd on this machine) of a folder of `tmp_path`,
    with sshfs's `-o options` besides the connection's: the mount point; skipped where
    sshfs, sshd or /dev/fuse are missing."""
    missing = [t for t in TOOLS if _tool(t) is None]
    if _fusermount() is None:
        missing.append("fusermount3")
    if missing or not os.path.exists("/dev/fuse"):
        why = f"missing {', '.join(missing)}" if missing else "no /dev/fuse"
        message = f"sshfs test needs sshfs, openssh-server and /dev/fuse: {why}"
        if missing and os.environ.get("TEST_REQUIRE_FUSE"):
            pytest.fail(message + "; TEST_REQUIRE_FUSE is set (.ci/run installs them)")
        pytest.skip(message)
    keys, export, mnt = tmp_path / "keys", tmp_path / "export", tmp_path / "mnt"
    for d in (keys, export, mnt):
        d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f",
                        str(keys / name)], check=True)  # fmt: skip
    (keys / "authorized_keys").write_bytes((keys / "client_key.pub").read_bytes())
    port = free_port()
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {keys / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege separation folder
    log = (tmp_path / "sshd.log").open("wb")
    sshd = subprocess.Popen([_tool("sshd"), "-D", "-e", "-f", str(keys / "sshd_config")],
                            stderr=log)  # fmt: skip
    try:
        wait_until(lambda: _accepts(port), 30, "sshd listening")
        subprocess.run(
            [_tool("sshfs"), "-p", str(port), "-o",
             f"IdentityFile={keys / 'client_key'},StrictHostKeyChecking=no,"
             "UserKnownHostsFile=/dev/null,BatchMode=yes" + "".join(f",{o}" for o in options),
             f"{getpass.getuser()}@127.0.0.1:{export}", str(mnt)],
            check=True, timeout=60,
        )  # fmt: skip
        try:
            yield mnt
        finally:
            _unmount(mnt)
    finally:
        sshd.terminate()
        sshd.wait(30)
        log.close()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _unmount(mnt: Path) -> None:
    deadline = time.monotonic() + 30
    while subprocess.run([_fusermount(), "-u", str(mnt)]).returncode != 0:
        if time.monotonic() > deadline:  # a daemon still has a file open there: lazily
            subprocess.run([_fusermount(), "-uz", str(mnt)])
            return
        time.sleep(0.2)


def test_three_instances_share_a_burst_over_sshfs_exactly_once(
    queue: Queue, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    kind = fs_type(queue.root)
    assert kind == "fuse.sshfs" and network_fs(kind), kind
    daemons = [
        start_daemon("--shared", "--instance", f"i{k}", "--state-dir", str(tmp_path / f"s{k}"),
                     "--poll", "--poll-interval", "0.2", "--lease", "30", "--workers", "1")
        for k in range(3)
    ]  # fmt: skip
    names = [f"n{i // 100}/f{i:03d}.log" for i in range(300)]
    for i, name in enumerate(names):
        queue.drop(name, f"line one of {i}\nline two\n")
    wait_until(lambda: len(queue.files("processed")) == 300, 180, "300 files in processed/")
    assert_exactly_once(queue, names)
    assert queue.files("failed") == []
    assert sum(len(d.events("file_processed")) for d in daemons) == 300
    assert all(not d.events("claim_failed") and not d.events("name_not_held") for d in daemons)
    assert not os.listdir(queue.root / ".folderd" / "names"), "every name held was released"
    # sshfs numbers files per mount, so inputs are named by record (`daemon.identity`)…
    for d in daemons:
        (named,) = d.events("identity_by_record")
        assert "inode numbers on this mount cannot be trusted" in named["why"], named
        assert "dir_cache=no" in d.events("mount_options")[0]["advice"]  # …and it says so
    assert len({s["uid"] for s in queue.summaries().values()}) == 300
