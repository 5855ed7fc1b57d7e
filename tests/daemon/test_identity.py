"""Shared mode's input identity (`daemon.identity`): the inode probe, the switch to naming
inputs by record, and, on a local folder made to work by record (a live peer whose lease
says it names inputs so, as a host on sshfs would), a claim taken over and a file given
back at shutdown keeping their uid; the mount advice read from mountinfo and /proc."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.fstype import advice, sshfs_options
from daemon.identity import RECORD, Identity, input_uid, probe
from daemon.shared.lease import PeerLease
from daemon.states import Folders
from tests.conftest import DaemonProcess, Queue, assert_exactly_once, wait_until, write_config

LEASE = "2"


def _peer(**fields: object) -> PeerLease:
    base = {"name": "p", "host": "elsewhere", "pid": 1, "lease_s": 30.0, "started": 0.0,
            "state": "running", "claims": 0, "processed": 0, "age_s": 1.0}  # fmt: skip
    return PeerLease(**{**base, **fields})  # type: ignore[arg-type]


def test_a_local_folder_numbers_files_by_inode(tmp_path: Path) -> None:
    assert probe(tmp_path) is None
    assert os.listdir(tmp_path) == [], "the probe leaves nothing behind"


def test_inputs_are_named_by_record_once_a_peer_does_or_numbers_files_otherwise(
    tmp_path: Path,
) -> None:
    folders = Folders(tmp_path / "w", tmp_path / "r", instance="me")
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "p.lock").touch()
    ident = Identity(folders, None)
    st = os.stat(locks / "p.lock")
    assert ident.new_uid(st) == input_uid(st) == ident.new_uid(st)
    ident.check_peers(locks, (_peer(lock_ino=st.st_ino),))  # the same number: trusted
    ident.check_peers(locks, (_peer(identity=RECORD, age_s=99.0),))  # expired: ignored
    assert not ident.records
    ident.check_peers(locks, (_peer(lock_ino=st.st_ino + 1),))
    assert ident.records and "number files differently" in (ident.why or "")
    assert ident.new_uid(st) != ident.new_uid(st), "a uid drawn per claim"
    other = Identity(Folders(tmp_path / "x", tmp_path / "r", instance="me"), None)
    other.check_peers(locks, (_peer(identity=RECORD),))
    assert other.records and "names inputs by record" in (other.why or "")


def _ghost(queue: Queue) -> None:
    """A live peer on another host that names inputs by record (its lease lasts an hour)."""
    d = queue.root / ".folderd" / "instances"
    d.mkdir(parents=True, exist_ok=True)
    lease = {"host": "elsewhere", "pid": 1, "lease_s": 3600, "started": time.time(),
             "state": "running", "claims": 0, "processed": 0, "identity": "record"}  # fmt: skip
    (d / "ghost.json").write_text(json.dumps(lease))


def _slow(tmp_path: Path) -> str:
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    return str(write_config(tmp_path / "slow.json", [node], ["end"]))


def _reservation(queue: Queue) -> str:
    """The text of the one name reservation held now."""
    (entry,) = os.scandir(queue.root / ".folderd" / "names")
    return os.readlink(entry.path)


@pytest.mark.integration
def test_by_record_a_claim_taken_over_keeps_the_uid_its_reservation_names(
    queue: Queue, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    _ghost(queue)
    args = ("--shared", "--lease", LEASE, "--workers", "1", "--config", _slow(tmp_path))
    victim = start_daemon(*args, "--instance", "victim")
    assert "ghost" in victim.wait_event("identity_by_record")["why"]
    queue.drop("r.log", "x\n" * 300)
    victim.wait_event("file_started", path="r.log")
    uid, instance, name = _reservation(queue).split("\n")  # a symlink: the text form
    assert (instance, name) == ("victim", "r.log") and len(uid) == 32
    victim.kill()
    taker = start_daemon(*args, "--instance", "taker")
    taker.wait_event("file_taken_over", 30, path="r.log")
    assert _reservation(queue) == f"{uid}\ntaker\nr.log", "the name stays held, now by taker"
    wait_until(lambda: queue.files("processed") == ["r.log"], 30, "r.log processed")
    assert_exactly_once(queue, ["r.log"])
    assert queue.summaries()["r.log"]["uid"] == uid
    assert not os.listdir(queue.root / ".folderd" / "names")


@pytest.mark.integration
def test_by_record_a_file_given_back_at_shutdown_is_claimed_again_under_its_uid(
    queue: Queue, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    _ghost(queue)
    args = ("--shared", "--lease", LEASE, "--workers", "1", "--config", _slow(tmp_path),
            "--shutdown-timeout", "0")  # fmt: skip
    first = start_daemon(*args, "--instance", "first")
    queue.drop("back.log", "x\n" * 300)
    first.wait_event("file_started", path="back.log")
    uid = _reservation(queue).split("\n")[0]
    first.signal(signal.SIGTERM)
    assert first.wait_exit(30) == 0
    assert queue.files("unprocessed") == ["back.log"]
    (note,) = (queue.root / ".folderd" / "returns").iterdir()
    assert note.read_text().split("\n")[0] == uid
    second = start_daemon(*args, "--instance", "second")
    wait_until(lambda: queue.files("processed") == ["back.log"], 30, "back.log processed")
    assert queue.summaries()["back.log"]["uid"] == uid, "the same input, by its note"
    assert not note.exists(), "the note is used up by the claim"
    assert second.events("identity_by_record")


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /srv/q rw,relatime shared:20 - nfs4 fs:/export rw,vers=4.2,hard,proto=tcp
41 22 0:36 / /srv/good rw shared:21 - nfs4 fs:/x rw,vers=4.2,acdirmin=1,acdirmax=1,lookupcache=pos
42 22 0:37 / /mnt/ssh rw,nosuid shared:22 - fuse.sshfs u@h:/ rw,user_id=0,group_id=0
"""


def test_mount_advice_names_the_options_a_shared_mount_lacks(tmp_path: Path) -> None:
    nfs = advice(Path("/srv/q/watch"), 3.0, MOUNTINFO, tmp_path)
    assert any("lookupcache=positive" in a for a in nfs), nfs
    assert any("up to 60 s" in a and "actimeo=1" in a for a in nfs), nfs
    assert advice(Path("/srv/good/w"), 3.0, MOUNTINFO, tmp_path) == []
    assert advice(Path("/var/x"), 3.0, MOUNTINFO, tmp_path) == []
    (unseen,) = advice(Path("/mnt/ssh/q"), 3.0, MOUNTINFO, tmp_path)  # no sshfs process
    assert "could not be read" in unseen
    proc = tmp_path / "4242"
    proc.mkdir()
    argv = [b"sshfs", b"-o", b"IdentityFile=/k,reconnect", b"u@h:/", b"/mnt/ssh"]
    (proc / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    assert sshfs_options("/mnt/ssh", tmp_path) == {"IdentityFile=/k", "reconnect"}
    (cached,) = advice(Path("/mnt/ssh/q"), 3.0, MOUNTINFO, tmp_path)
    assert "-o dir_cache=no" in cached
    argv[2] += b",dir_cache=no"
    (proc / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    assert advice(Path("/mnt/ssh/q"), 3.0, MOUNTINFO, tmp_path) == []
