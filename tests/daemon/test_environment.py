"""The machine failing is never the file's fault: a real full tmpfs, a real free-space floor
and a real read-only remount pause the queue; nothing ends in failed/; when the condition
clears, everything waiting is processed exactly once with no operator action."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import DaemonProcess, Queue, assert_exactly_once, wait_until

pytestmark = pytest.mark.integration

PASS_THROUGH = {"version": 1, "routes": [{"start": "end"}], "nodes": [], "outputs": {"end": {}}}


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], None]]:
    """Mount a real tmpfs of a given size on a folder (root only: CI runs as root)."""
    mounted: list[Path] = []

    def mount(where: Path, size: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def _remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


@pytest.fixture
def start(
    start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> Iterator[Callable[..., tuple[DaemonProcess, httpx.Client]]]:
    """A daemon with a pass-through pipeline and its dashboard, and a client for it."""
    cfg = tmp_path / "pass.json"
    cfg.write_text(json.dumps(PASS_THROUGH))
    clients: list[httpx.Client] = []

    def run(*args: str) -> tuple[DaemonProcess, httpx.Client]:
        d = start_daemon("--config", str(cfg), "--port", "0", *args, dashboard=True)
        url = d.wait_event("dashboard_started")["url"]
        clients.append(httpx.Client(base_url=url, timeout=10.0))
        return d, clients[-1]

    yield run
    for client in clients:
        client.close()


def _paused(http: httpx.Client) -> dict | None:
    """The /health check that says whether claiming is paused, when /health is 503."""
    r = http.get("/health")
    check = next(c for c in r.json()["checks"] if c["name"] == "paused")
    return None if check["ok"] else {"code": r.status_code, **check}


def test_a_full_results_disk_pauses_fails_nothing_and_resumes_when_space_returns(
    queue: Queue, start, tmpfs
) -> None:
    tmpfs(queue.results, "1m")
    d, http = start("--min-disk-free-mb", "0")
    names = [f"f{i:02d}.log" for i in range(30)]
    line = "x" * 99 + "\n"
    for name in names:  # 30 x 100 KB of output: three times what the disk holds
        queue.drop(name, line * 1000)
    paused = wait_until(lambda: _paused(http), 60, "/health naming the pause")
    assert paused["code"] == 503 and "No space left on device" in paused["detail"]
    assert "folderd_paused 1.0" in http.get("/metrics").text
    assert 'folderd_pauses_total{cause="disk_full"} 1.0' in http.get("/metrics").text
    assert d.events("queue_paused")[0]["cause"] == "disk_full"
    assert "paused: " in http.get("/").text
    assert queue.files("failed") == []
    assert len(queue.files("processed")) < len(names)

    _remount(queue.results, "size=64m")  # the operator frees space
    wait_until(lambda: len(queue.files("processed")) == len(names), 90, "all processed")
    assert_exactly_once(queue, names)
    assert queue.files("failed") == []
    assert http.get("/health").status_code == 200
    assert d.events("queue_resumed")
    assert all(s["attempts"] == 1 for s in queue.summaries().values()), (
        "a file held for the machine is not charged an attempt"
    )


@pytest.mark.serial
def test_the_free_space_floor_pauses_claiming_before_the_disk_is_full(
    queue: Queue, start, tmpfs
) -> None:
    tmpfs(queue.results, "8m")
    filler = queue.results / "filler.bin"
    filler.write_bytes(b"\0" * (6 << 20))  # 2 MB left, under a 4 MB floor
    d, http = start("--min-disk-free-mb", "4")
    paused = wait_until(lambda: _paused(http), 30, "paused below the floor")
    assert "below the --min-disk-free-mb floor of 4 MB" in paused["detail"]
    names = [f"f{i}.log" for i in range(5)]
    for name in names:
        queue.drop(name, "a line\n")
    queued = lambda: http.get("/api/status").json()["counts"]["queued"] == len(names)  # noqa: E731
    wait_until(queued, 30, "all five settled and waiting")
    assert queue.files("underprocess") == [] and queue.files("processed") == []
    assert sorted(queue.files("unprocessed")) == names, "nothing is claimed while paused"
    loop = psutil.Process(d.pid)
    before, t0 = sum(loop.cpu_times()[:2]), time.monotonic()
    time.sleep(2)  # a window to measure, not a wait for something to happen
    busy = (sum(loop.cpu_times()[:2]) - before) / (time.monotonic() - t0)
    assert busy < 0.25, f"the paused loop spins ({busy:.0%} of a core) with files settled"

    filler.unlink()
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "all processed")
    assert_exactly_once(queue, names)
    assert [e["cause"] for e in d.events("queue_paused")] == ["disk_low"]


def test_a_read_only_results_disk_pauses_and_resumes_when_writable_again(
    queue: Queue, start, tmpfs
) -> None:
    tmpfs(queue.results, "16m")
    d, http = start("--min-disk-free-mb", "1")
    _remount(queue.results, "ro")
    names = [f"ro{i}.log" for i in range(10)]
    for name in names:
        queue.drop(name, "line\n")
    paused = wait_until(lambda: _paused(http), 30, "paused for the read-only results")
    assert "Read-only file system" in paused["detail"]
    assert queue.files("failed") == [] and queue.files("processed") == []

    _remount(queue.results, "rw")
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "all processed")
    assert_exactly_once(queue, names)
    assert d.events("queue_paused")[0]["cause"] == "read_only"


def test_a_folder_mounted_over_unprocessed_pauses_and_the_daemon_keeps_running(
    queue: Queue, start, tmpfs
) -> None:
    # A read-only bind mount over unprocessed/: files can no longer be renamed out of it
    # (rename across mounts is EXDEV), which once made the daemon exit 2, the code a
    # systemd unit never restarts.
    tmpfs(queue.root.parent / "unused", "1m")  # skips where mounting is not allowed
    d, http = start("--settle", "1.5", "--settle-renames")  # all five still waiting when
    # the mount comes: a file renamed in is otherwise claimed within ~10 ms
    names = [f"m{i}.log" for i in range(5)]
    for name in names:
        queue.drop(name, "line\n")
    drop = str(queue.dir("unprocessed"))
    subprocess.run(["mount", "--bind", drop, drop], check=True)
    try:
        _remount(queue.dir("unprocessed"), "bind,ro")
        paused = wait_until(lambda: _paused(http), 30, "paused for the mount")
        assert "different filesystems" in paused["detail"]
        assert d.proc.poll() is None, "the daemon keeps running"
        assert sorted(queue.files("unprocessed")) == names and queue.files("failed") == []
    finally:
        subprocess.run(["umount", drop], check=True)
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "all processed")
    assert_exactly_once(queue, names)


def test_unprocessed_moved_away_pauses_until_it_is_back_and_the_new_one_is_watched(
    queue: Queue, start
) -> None:
    d, http = start("--rescan-interval", "600")  # what lands later is seen by the watcher
    queue.drop("before.log", "line\n")
    wait_until(lambda: queue.files("processed") == ["before.log"], 30, "before.log processed")
    up = queue.dir("unprocessed")
    up.rename(queue.root / "unprocessed.away")
    up.write_text("a file where the folder was: it cannot be made again yet\n")
    paused = wait_until(lambda: _paused(http), 30, "/health 503 for the moved folder")
    assert paused["code"] == 503 and str(up) in paused["detail"]
    up.unlink()  # the probe makes the folder again, the watcher follows it
    wait_until(lambda: _paused(http) is None, 60, "claiming resumed")
    queue.drop("after.log", "line\n")
    wait_until(lambda: "after.log" in queue.files("processed"), 10, "after.log seen and processed")
    assert d.events("watcher_moved") and d.proc.poll() is None
