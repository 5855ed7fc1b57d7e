"""Shared mode: several real daemons on one watch_dir (the local filesystem stands in for
the shared one: rename and mtime are what shared mode relies on)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.fstype import fs_type, network_fs
from tests.conftest import DaemonProcess, Queue, assert_exactly_once, wait_until, write_config
from tests.daemon.test_lifecycle import _assert_no_torn_results

pytestmark = pytest.mark.integration

LEASE = "2"  # seconds: short, so takeovers happen within a test


def _instances(
    start_daemon: Callable[..., DaemonProcess], n: int, *args: str
) -> list[DaemonProcess]:
    return [
        start_daemon("--shared", "--instance", f"i{k}", "--lease", LEASE, "--workers", "1", *args)
        for k in range(n)
    ]


def _processed_by(d: DaemonProcess) -> int:
    return len(d.events("file_processed"))


def _claimed(queue: Queue, instance: str) -> list[str]:
    top = queue.dir("underprocess") / instance
    return sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file())


def _slow_file_config(tmp_path: Path) -> Path:
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    return write_config(tmp_path / "slow.json", [node], ["end"])


def test_three_instances_share_a_burst_of_3000_files_exactly_once(
    queue: Queue, start_daemon
) -> None:
    daemons = _instances(start_daemon, 3, "--lease", "30")  # no takeover, even if starved
    names = [f"b{i // 500}/f{i:04d}.log" for i in range(3000)]
    for i, name in enumerate(names):
        queue.drop(name, f"line one of {i}\nline two\n")
    wait_until(lambda: len(queue.files("processed")) == 3000, 150, "3000 files in processed/")
    assert_exactly_once(queue, names)  # one summary each, none left in underprocess/*
    _assert_no_torn_results(queue)
    done = [_processed_by(d) for d in daemons]
    assert sum(done) == 3000 and all(done), f"each instance takes a share: {done}"
    for d in daemons:
        assert not d.events("claim_failed") and not d.events("file_vanished"), d.output()[-2000:]


@pytest.mark.serial
def test_a_sigkilled_instances_claims_are_taken_over_within_its_lease(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    config = _slow_file_config(tmp_path)
    victim, *peers = _instances(start_daemon, 3, "--config", str(config), "--workers", "2")
    names = [f"k{i:03d}.log" for i in range(300)]
    for name in names:
        queue.drop(name, "x\n" * 10)  # 0.1 s each
    wait_until(lambda: _processed_by(victim) >= 10 and _claimed(queue, "i0"), 60, "i0 busy")
    victim.kill()
    killed = time.monotonic()
    held = _claimed(queue, "i0")
    wait_until(lambda: not _claimed(queue, "i0"), 30, "i0's claims taken over")
    took = time.monotonic() - killed
    assert took < float(LEASE) + 4, f"takeover took {took:.1f} s"
    taken = [e for d in peers for e in d.events("file_taken_over") if e.get("instance") == "i0"]
    paths = [e["path"] for e in taken]
    # Each once, under its name; a loop starved past its short lease on a loaded machine
    # may lose a few claims to a takeover before the kill, too: safe, and allowed here.
    assert set(held) <= set(paths) and len(paths) == len(set(paths)), (held, paths)
    assert not [e for e in taken if "from_path" in e], "a claim taken over kept its name"
    wait_until(lambda: len(queue.files("processed")) == 300, 120, "300 files in processed/")
    assert_exactly_once(queue, names)
    _assert_no_torn_results(queue)
    assert list((queue.results / ".folderd-tmp-i0").iterdir()) == []
    summaries = queue.summaries()
    assert all(summaries[name]["attempts"] >= 2 for name in held), "the killed one counts"
    assert not list((queue.root / ".folderd" / "attempts").iterdir())


def test_an_input_that_instances_keep_dying_on_ends_in_failed(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    args = ("--config", str(_slow_file_config(tmp_path)), "--max-attempts", "1")
    (first,) = _instances(start_daemon, 1, *args)
    queue.drop("poison.log", "x\n" * 500)
    wait_until(lambda: _claimed(queue, "i0") == ["poison.log"], 30, "poison.log claimed")
    first.kill()  # the attempt it was on is its only one
    second = start_daemon("--shared", "--instance", "other", "--lease", LEASE, *args)
    wait_until(lambda: queue.files("failed") == ["poison.log"], 30, "poison.log failed")
    error = queue.summaries()["poison.log"]["error"]
    assert error["type"] == "Interrupted" and "gave up after 1 attempt" in error["message"]
    assert second.events("instance_taken_over") and not second.events("file_started")


def test_an_instance_frozen_past_its_lease_commits_nothing_twice(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    config = _slow_file_config(tmp_path)
    victim = start_daemon("--shared", "--instance", "frozen", "--lease", LEASE, "--workers",
                          "2", "--config", str(config))  # fmt: skip
    queue.drop("big.log", "x\n" * 400)  # 4 s: its commit comes well after the lease lapsed
    queue.drop("early.log", "x\n" * 30)  # 0.3 s: it may commit while the loop is frozen
    wait_until(lambda: len(victim.events("file_started")) == 2, 30, "both files started")
    victim.signal(signal.SIGSTOP)
    try:
        peers = _instances(start_daemon, 2, "--config", str(config))
        names = [f"s{i:03d}.log" for i in range(60)]
        for name in names:
            queue.drop(name, "x\n" * 5)
        wait_until(lambda: any(d.events("instance_taken_over") for d in peers), 30, "takeover")
        assert not _claimed(queue, "frozen")
    finally:  # it wakes up only now, holding work that peers took over
        victim.signal(signal.SIGCONT)
    every = [*names, "big.log", "early.log"]
    wait_until(lambda: len(queue.files("processed")) == len(every), 90, "all processed")
    victim.wait_event("lease_lapsed")
    assert_exactly_once(queue, every)  # early.log: one summary, even if both committed it
    _assert_no_torn_results(queue)
    wait_until(lambda: victim.events("file_vanished"), 30, "the frozen one lets go")
    assert victim.proc.poll() is None
    for d in (victim, *peers):
        d.signal(signal.SIGTERM)
        assert d.wait_exit(30) == 0
    assert not list((queue.root / ".folderd" / "instances").glob("*.json")), "leases released"


def test_a_claim_taken_over_keeps_its_name_when_a_new_file_of_that_name_waits(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    """The race the manual had "Left open": an input taken from a frozen instance used to
    go back to unprocessed/, where a new file of its name made it `same~1.log`; a late
    commit of the frozen instance would then have left a second summary under `same.log`.
    Now the taker moves it into its own folder under its name and runs it: any late commit
    of the frozen one writes the same names with the same uid."""
    config = str(_slow_file_config(tmp_path))
    args = ("--shared", "--lease", LEASE, "--workers", "1", "--config", config)
    taker = start_daemon(*args, "--instance", "taker")
    # taker's worker holds two files, the one it runs and the next: it claims nothing more
    # while it runs b1 (15 s, however long frozen takes to start on a loaded machine)
    queue.drop("b1.log", "x\n" * 1500)
    queue.drop("b2.log", "x\n" * 100)
    wait_until(lambda: len(_claimed(queue, "taker")) == 2, 30, "taker full")
    frozen = start_daemon(*args, "--instance", "frozen")
    queue.drop("same.log", "old\n" * 400)  # 4 s on frozen's worker
    frozen.wait_event("file_started", path="same.log")
    os.killpg(frozen.pid, signal.SIGSTOP)  # the whole instance, its worker too
    try:
        queue.drop("same.log", "new\n")  # waits in unprocessed/ while same.log is taken over
        taken = taker.wait_event("file_taken_over", 30)
    finally:
        os.killpg(frozen.pid, signal.SIGCONT)
    assert taken["path"] == "same.log" and "from_path" not in taken
    every = ["b1.log", "b2.log", "same.log", "same~1.log"]
    wait_until(lambda: queue.files("processed") == every, 90, "all processed")
    assert_exactly_once(queue, every)
    summaries = queue.summaries()
    assert summaries["same.log"]["lines_in"] == 400, "the input taken over kept its name"
    assert summaries["same~1.log"]["lines_in"] == 1
    assert summaries["same.log"]["attempts"] == 2, "the frozen one's attempt counts"


def test_a_worker_does_not_commit_once_its_instances_lease_lapsed(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    # Alone, so nobody takes the file over: what is tested is the frozen loop's worker.
    d = start_daemon("--shared", "--instance", "solo", "--lease", LEASE, "--workers", "1",
                     "--config", str(_slow_file_config(tmp_path)))  # fmt: skip
    queue.drop("long.log", "x\n" * 400)  # 4 s of work: it ends after the lease lapsed
    d.wait_event("file_started", path="long.log")
    d.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 5, 10, "the worker to finish")
        assert not (queue.results / "long.log.json").exists(), "committed without a lease"
    finally:
        d.signal(signal.SIGCONT)
    d.wait_event("commit_withheld", path="long.log")
    wait_until(lambda: queue.files("processed") == ["long.log"], 30, "long.log processed")
    assert_exactly_once(queue, ["long.log"])
    assert queue.summaries()["long.log"]["attempts"] == 1, "a withheld commit is not counted"


def test_two_files_of_one_name_on_two_instances_get_two_names(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    _instances(start_daemon, 2, "--config", str(_slow_file_config(tmp_path)))
    queue.drop("same.log", "first\n" * 200)  # 2 s: one instance is busy with it…
    wait_until(lambda: any(queue.dir("underprocess").glob("*/same.log")), 30, "first claimed")
    queue.drop("same.log", "second\n")  # …so the other claims this one, while it is
    wait_until(lambda: len(queue.files("processed")) == 2, 30, "both processed")
    assert queue.files("processed") == ["same.log", "same~1.log"]
    summaries = queue.summaries()
    assert {s["lines_in"] for s in summaries.values()} == {200, 1}
    assert len({s["uid"] for s in summaries.values()}) == 2


def test_a_name_already_processed_is_found_once_the_claim_holds_it(
    queue: Queue, start_daemon
) -> None:
    """A shared claim looks only in its own folder before its rename; the name's owner in
    processed/ (and its summary) is found after the name is held, and the claim moves on to
    the next `~N` inside its own folder: nothing of the first input is touched."""
    (d,) = _instances(start_daemon, 1)
    queue.drop("again.log", "first\n")
    wait_until(lambda: queue.files("processed") == ["again.log"], 30, "the first processed")
    queue.drop("again.log", "second\nline\n")
    d.wait_event("claim_renamed", path="again~1.log", from_path="again.log")
    wait_until(lambda: len(queue.files("processed")) == 2, 30, "the second processed")
    assert queue.files("processed") == ["again.log", "again~1.log"]
    summaries = queue.summaries()
    assert (summaries["again.log"]["lines_in"], summaries["again~1.log"]["lines_in"]) == (1, 2)
    assert (queue.dir("processed") / "again.log").read_text() == "first\n"
    assert not list((queue.root / ".folderd" / "names").iterdir()), "every name released"


def test_a_second_instance_of_the_same_name_is_refused_naming_host_and_pid(
    queue: Queue, start_daemon
) -> None:
    (first,) = _instances(start_daemon, 1)
    second = start_daemon("--shared", "--instance", "i0", wait=False)
    assert second.wait_exit(60) == 1
    out = second.output()
    assert "another instance named 'i0' is alive" in out
    assert f"host {os.uname().nodename}, PID {first.pid}" in out
    assert first.proc.poll() is None


def test_shared_and_exclusive_daemons_refuse_each_other(queue: Queue, start_daemon) -> None:
    (shared,) = _instances(start_daemon, 1)
    alone = start_daemon(wait=False)
    assert alone.wait_exit(60) == 1
    assert f"shared mode are running on {queue.root}: 'i0' (host " in alone.output()
    assert f"PID {shared.pid})" in alone.output()
    shared.signal(signal.SIGTERM)
    assert shared.wait_exit(30) == 0
    exclusive = start_daemon()
    late = start_daemon("--shared", "--instance", "late", wait=False)
    assert late.wait_exit(60) == 1
    assert f"a folderd without --shared (PID {exclusive.pid}) is running" in late.output()


def test_a_restarted_instance_recovers_its_own_claims_first(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    config = str(_slow_file_config(tmp_path))
    (d,) = _instances(start_daemon, 1, "--config", config, "--lease", "30")
    queue.drop("r.log", "x\n" * 300)
    wait_until(lambda: _claimed(queue, "i0") == ["r.log"], 30, "r.log claimed")
    d.kill()
    again = start_daemon("--shared", "--instance", "i0", "--config", config, "--lease", "30")
    assert {e["path"] for e in again.events("file_recovered")} == {"r.log"}
    wait_until(lambda: queue.files("processed") == ["r.log"], 30, "r.log processed")
    assert_exactly_once(queue, ["r.log"])


def test_the_journal_lives_in_state_dir_and_shared_flags_need_shared(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    alone = start_daemon("--instance", "x", wait=False)
    assert alone.wait_exit(60) == 2
    assert "--instance and --state-dir only mean something with --shared" in alone.output()
    state = tmp_path / "state"
    _instances(start_daemon, 1, "--state-dir", str(state))
    queue.drop("a.log", "one line\n")
    wait_until(lambda: queue.files("processed") == ["a.log"], 30, "a.log processed")
    assert (state / "journal.sqlite3").is_file()
    assert not list((queue.root / ".folderd").glob("journal*"))


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /srv/queue rw,relatime shared:20 - nfs4 fs:/export rw,vers=4.2
41 40 0:36 / /srv/queue/local\\040disk rw shared:21 - xfs /dev/sdb1 rw
42 22 0:37 / /mnt/ssh rw,nosuid shared:22 - fuse.sshfs u@h:/ rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "network"),
    [
        ("/srv/queue/.folderd", "nfs4", True),
        ("/srv/queue/local disk/x", "xfs", False),
        ("/mnt/ssh/q", "fuse.sshfs", True),
        ("/srv/queuex", "ext4", False),
    ],
)
def test_the_journal_filesystem_is_read_from_mountinfo(path: str, kind: str, network: bool) -> None:
    assert fs_type(Path(path), MOUNTINFO) == kind
    assert network_fs(kind) is network


def test_this_machines_tmp_path_is_a_local_filesystem(tmp_path: Path) -> None:
    kind = fs_type(tmp_path)
    assert kind is not None and not network_fs(kind), kind
