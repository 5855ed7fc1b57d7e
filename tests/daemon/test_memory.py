"""No file can take the machine's memory: each worker runs under --worker-memory-mb, a
file that needs more fails after its attempts saying so, and the daemon and the other
workers never notice. A worker the kernel's OOM killer takes is named as such."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.memory import OomCounters, cap_mb, machine_memory_bytes
from tests.conftest import Queue, wait_until
from tests.processors.workbooks import numbers_xlsx

pytestmark = pytest.mark.integration

HOARD = {"name": "hoard", "tag": "hoard", "use": "tests.daemon.memory_plugin:hoard", "to": "end"}
SLOW = {"name": "slow", "tag": "slow", "use": "tests.daemon.slow_plugin:slow", "to": "end"}


def _config(path: Path, **routes: dict) -> Path:
    """hoard*: a plugin that keeps allocating; slow*: 10 ms a line; *.xlsx: the Excel
    reader; the rest: as is."""
    config = {
        "version": 1,
        "routes": [
            {"glob": "hoard*", "start": "hoard"},
            {"glob": "slow*", "start": "slow"},
            {"glob": "*.xlsx", "start": "end", "reader": {"type": "excel"}},
            {"start": "end"},
        ],
        "nodes": [HOARD, SLOW],
        "outputs": {"end": {}},
    }
    path.write_text(json.dumps(config))
    return path


def _small(queue: Queue, n: int) -> list[str]:
    names = [f"small{i}.log" for i in range(n)]
    for name in names:
        queue.drop(name, "a line\n" * 100)
    return names


def test_a_file_that_hoards_memory_fails_at_the_cap_and_nothing_else_notices(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    d = start_daemon("--config", str(_config(tmp_path / "c.json")), "--workers", "2",
                     "--worker-memory-mb", "200", "--max-attempts", "2")  # fmt: skip
    daemon_pid = d.pid
    queue.drop("hoard.log", "one line\n")
    names = _small(queue, 10)
    wait_until(lambda: queue.files("failed") == ["hoard.log"], 60, "hoard.log failed")
    wait_until(lambda: set(names) <= set(queue.files("processed")), 60, "the others processed")
    error = queue.summaries()["hoard.log"]["error"]
    assert error["type"] == "MemoryLimit" and error["processor"] == "hoard"
    assert error["message"] == (
        "exceeded the worker memory limit (200 MB) (gave up after 2 attempts)"
    )
    wait_until(lambda: len(d.events("worker_recycled")) == 2, 30, "a fresh worker after each")
    assert d.events("worker_died") == [], "no worker died, none was charged"
    assert d.proc.poll() is None and d.pid == daemon_pid
    assert all(queue.summaries()[n]["attempts"] == 1 for n in names)


def test_a_workbook_too_big_for_the_cap_fails_saying_so_though_calamine_aborts(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    """calamine (Rust) aborts the process when an allocation fails: the worker dies of
    SIGABRT, and its last words on stderr say why, so the reason is still the cap."""
    d = start_daemon("--config", str(_config(tmp_path / "c.json")), "--workers", "2",
                     "--worker-memory-mb", "110", "--max-attempts", "2")  # fmt: skip
    numbers_xlsx(queue.dir("unprocessed") / ".book.tmp", 200_000)  # ~170 MB in a worker
    os.rename(queue.dir("unprocessed") / ".book.tmp", queue.dir("unprocessed") / "book.xlsx")
    names = _small(queue, 6)
    wait_until(lambda: queue.files("failed") == ["book.xlsx"], 90, "book.xlsx failed")
    wait_until(lambda: set(names) <= set(queue.files("processed")), 60, "the others processed")
    died = d.events("worker_died")
    assert [e["exit"] for e in died] == ["killed by signal 6 (SIGABRT)"] * 2
    assert all(e["error"] == "exceeded the worker memory limit (110 MB)" for e in died)
    message = queue.summaries()["book.xlsx"]["error"]["message"]
    assert message == "exceeded the worker memory limit (110 MB) (gave up after 2 attempts)"
    assert "memory allocation of" in d.output(), "its stderr forwarded to the daemon's"
    assert d.proc.poll() is None


def test_the_default_cap_is_a_share_of_the_memory_and_zero_means_none() -> None:
    machine = machine_memory_bytes() >> 20
    assert cap_mb(None, 2) == max(512, int(machine * 0.75 / 2))
    assert cap_mb(None, 10_000) == 512, "never below the floor, however many workers"
    assert cap_mb(300, 2) == 300 and cap_mb(0, 2) is None


_cgroup_seq = itertools.count()


def _memory_cgroup(limit_mb: int) -> Iterator[Path]:
    """A memory cgroup of `limit_mb` for this test alone (v2 under the root, or v1 under
    this process's own memory cgroup); skipped where none can be made."""
    name = f"folderd-test-{os.getpid()}-{next(_cgroup_seq)}"
    root = Path("/sys/fs/cgroup")
    controllers = root / "cgroup.subtree_control"
    if controllers.exists() and "memory" in controllers.read_text().split():
        path, limit_file = root / name, "memory.max"
    else:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        own = next((line.split(":", 2)[2] for line in lines
                    if "memory" in line.split(":", 2)[1].split(",")), None)  # fmt: skip
        if own is None or not (root / "memory").is_dir():
            pytest.skip("no memory cgroup controller here")
        path, limit_file = root / "memory" / own.lstrip("/") / name, "memory.limit_in_bytes"
    try:
        path.mkdir()
        (path / limit_file).write_text(str(limit_mb << 20))
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup here: {exc}")
    try:
        yield path
    finally:
        procs = path / "cgroup.procs"
        with contextlib.suppress(OSError):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        wait_until(lambda: not procs.read_text().strip(), 30, "the cgroup empty")
        path.rmdir()


@pytest.fixture
def cgroup_350() -> Iterator[Path]:
    yield from _memory_cgroup(350)


def test_a_worker_the_oom_killer_takes_is_named_and_only_its_file_pays(
    queue: Queue, start_daemon, tmp_path: Path, cgroup_350: Path
) -> None:
    """The daemon runs in a 350 MB cgroup with no cap of its own: the hoarding worker is
    killed by the kernel (SIGKILL), and the reason says who and why."""
    enter = ("sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup_350))
    d = start_daemon("--config", str(_config(tmp_path / "c.json")), "--workers", "2",
                     "--worker-memory-mb", "0", "--max-attempts", "2", prefix=enter)  # fmt: skip
    before = OomCounters.read(d.pid)
    assert any(limit == 350 << 20 for _, limit in before.cgroups), "the daemon is inside"
    queue.drop("hoard.log", "one line\n")
    names = _small(queue, 6)
    wait_until(lambda: queue.files("failed") == ["hoard.log"], 90, "hoard.log failed")
    wait_until(lambda: set(names) <= set(queue.files("processed")), 60, "the others processed")
    died = d.events("worker_died")
    assert [e["exit"] for e in died] == ["killed by signal 9 (SIGKILL)"] * 2
    reason = "worker process killed by the kernel's OOM killer (memory limit 350 MB)"
    assert [e["error"] for e in died] == [reason] * 2
    assert queue.summaries()["hoard.log"]["error"]["message"] == (
        f"{reason} (gave up after 2 attempts)"
    )
    assert d.proc.poll() is None


def test_an_oom_kill_is_charged_once_a_later_kill_9_is_a_signal(
    queue: Queue, start_daemon, tmp_path: Path, cgroup_350: Path
) -> None:
    """The OOM killer's counters only say that some kill happened since a baseline: once a
    death is charged with one, a worker started before it that is then `kill -9`'d by
    hand (or by anything else) died of a signal, not of the OOM killer."""
    enter = ("sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup_350))
    d = start_daemon("--config", str(_config(tmp_path / "c.json")), "--workers", "2",
                     "--worker-memory-mb", "0", "--max-attempts", "1", "--debug",
                     prefix=enter)  # fmt: skip
    queue.drop("hoard.log", "one line\n")
    wait_until(lambda: queue.files("failed") == ["hoard.log"], 90, "hoard.log failed")
    (oom,) = d.events("worker_died")
    assert oom["error"].startswith("worker process killed by the kernel's OOM killer")
    wait_until(lambda: len(d.events("worker_ready")) == 3, 30, "its replacement ready")
    names = ["slow1.log", "slow2.log"]  # 4 s each: one on each worker, the old and the new
    for name in names:
        queue.drop(name, "line\n" * 400)
    pids = {d.wait_event("file_started", path=n)["worker_pid"] for n in names}
    assert len(pids) == 2 and oom["pid"] not in pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: len(d.events("worker_died")) == 3, 30, "both deaths seen")
    signal_9 = "worker process died (killed by signal 9 (SIGKILL))"
    assert [e["error"] for e in d.events("worker_died")[1:]] == [signal_9] * 2
    wait_until(lambda: sorted(queue.files("failed")) == ["hoard.log", *names], 30, "failed")
    assert all(queue.summaries()[n]["error"]["message"].startswith(signal_9) for n in names)


def _health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


def _check(url: str, name: str) -> dict:
    return next(c for c in _health(url)["checks"] if c["name"] == name)


def _failing(url: str, name: str) -> dict | None:
    check = _check(url, name)
    return None if check["ok"] else check


def test_a_cap_too_small_for_a_worker_to_start_charges_no_file(queue: Queue, start_daemon) -> None:
    """The cap is the machine's setting, not the file's: a worker that cannot even start
    under it is a start failure (backed off, /health red), and files wait unclaimed."""
    d = start_daemon("--worker-memory-mb", "20", "--workers", "1", "--port", "0",
                     dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    queue.drop("a.log", "a line\n")
    failed = d.wait_event("worker_start_failed")
    assert failed["error"] == "the worker memory limit (20 MB) is too small for a worker to start"
    wait_until(lambda: len(d.events("worker_start_failed")) >= 3, 30, "backing off, again")
    workers = _check(url, "workers")
    assert not workers["ok"] and "0 of 1 alive" in workers["detail"]
    assert queue.files("unprocessed") == ["a.log"], "never claimed: no worker could take it"
    assert queue.files("failed") == [] and d.events("file_started") == []


def test_a_pipeline_too_big_for_the_cap_holds_its_files_and_pauses(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    """A plugin that loads a 300 MB model at import under a 200 MB cap: no file can run
    in any worker, so none is charged; the first is held and claiming pauses, saying so."""
    node = {"name": "model", "tag": "in", "use": "tests.daemon.heavy_plugin:classify",
            "to": "end"}  # fmt: skip
    config = tmp_path / "heavy.json"
    config.write_text(json.dumps({"version": 1, "routes": [{"start": "in"}], "nodes": [node],
                                  "outputs": {"end": {}}}))  # fmt: skip
    d = start_daemon("--config", str(config), "--worker-memory-mb", "200", "--workers", "1",
                     "--max-attempts", "1", "--port", "0", dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    queue.drop("a.log", "a line\n")
    held = d.wait_event("file_held", path="a.log")
    reason = "the worker memory limit (200 MB) is too small to load the pipeline"
    assert held["error"].startswith(reason), held["error"]
    paused = wait_until(lambda: _failing(url, "paused"), 30, "/health: paused")
    assert reason in paused["detail"]
    assert queue.files("failed") == [] and queue.files("underprocess") == ["a.log"]


@pytest.fixture
def cgroup_64() -> Iterator[Path]:
    yield from _memory_cgroup(64)


def test_an_oom_kill_elsewhere_on_the_machine_is_not_this_workers(
    queue: Queue, start_daemon, slow_config: Path, cgroup_350: Path, cgroup_64: Path
) -> None:
    """The machine's OOM counter moves for a kill anywhere (another container, another
    user's job): while a worker runs, a process in another cgroup is OOM-killed, then the
    worker is killed by hand: it died of its signal."""
    enter = ("sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup_350))
    d = start_daemon("--config", str(slow_config), "--workers", "1", "--worker-memory-mb",
                     "0", "--max-attempts", "1", prefix=enter)  # fmt: skip
    queue.drop("slow.log", "line\n" * 600)  # 6 s
    pid = d.wait_event("file_started", path="slow.log")["worker_pid"]
    hog = subprocess.run(
        ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$1" -c "$2"', str(cgroup_64),
         sys.executable, "x = []\nwhile True: x.append(b'x' * (8 << 20))"],
        timeout=60, check=False,
    )  # fmt: skip
    assert hog.returncode == -signal.SIGKILL, "the hog was OOM-killed in its own cgroup"
    os.kill(pid, signal.SIGKILL)
    died = d.wait_event("worker_died")
    assert died["error"] == "worker process died (killed by signal 9 (SIGKILL))"
