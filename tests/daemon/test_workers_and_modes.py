"""Worker deaths, SIGHUP reload, warm/cold stop with slow files, --input and --drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, Queue, wait_until, write_config

pytestmark = pytest.mark.integration


def test_worker_killed_mid_file_retries_only_its_file(
    queue: Queue, start_daemon, slow_config: Path
) -> None:
    d = start_daemon("--config", str(slow_config), "--workers", "2")
    queue.drop("victim.log", "line\n" * 400)
    started = d.wait_event("file_started", path="victim.log")
    others = [f"other{i}.log" for i in range(6)]
    for name in others:
        queue.drop(name, "x\n" * 20)
    os.kill(started["worker_pid"], signal.SIGKILL)
    died = d.wait_event("worker_died", path="victim.log")
    assert "signal 9" in died["exit"]
    wait_until(lambda: len(queue.files("processed")) == 7, 90, "all seven processed")
    summaries = queue.summaries()
    assert summaries["victim.log"]["attempts"] == 2
    assert summaries["victim.log"]["lines_in"] == 400
    assert all(summaries[n]["attempts"] == 1 for n in others)
    assert queue.files("failed") == []
    assert d.proc.poll() is None


def test_sigterm_with_a_slow_file_in_flight_returns_it_and_exits_0(
    queue: Queue, start_daemon, slow_config: Path
) -> None:
    d = start_daemon("--config", str(slow_config), "--workers", "1", "--shutdown-timeout", "0.5")
    queue.drop("long.log", "line\n" * 1000)  # ~10 s: outlives the 0.5 s shutdown timeout
    d.wait_event("file_started", path="long.log")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(30) == 0
    assert queue.files("underprocess") == []
    assert queue.files("unprocessed") == ["long.log"], "returned to the queue, not lost"
    assert d.events("shutdown_escalated")[0]["reason"] == "shutdown timeout"
    assert queue.temp_results() == []


def test_second_signal_makes_the_stop_cold(queue: Queue, start_daemon, slow_config: Path) -> None:
    d = start_daemon("--config", str(slow_config), "--workers", "1")  # warm timeout: 30 s
    queue.drop("long.log", "line\n" * 3000)
    d.wait_event("file_started", path="long.log")
    d.signal(signal.SIGINT)
    d.wait_event("daemon_stopping")
    d.signal(signal.SIGINT)
    assert d.wait_exit(20) == 0
    assert d.events("shutdown_escalated")[0]["reason"] == "second signal"
    assert queue.files("unprocessed") == ["long.log"]


def test_sighup_reloads_a_valid_config_and_keeps_the_old_one_when_invalid(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    cfg = tmp_path / "pipeline.json"
    upper = {"name": "up", "tag": "in", "use": "upper", "to": "end"}
    write_config(cfg, [upper], ["end"])
    d = start_daemon("--config", str(cfg))
    queue.drop("a.log", "hello\n")
    wait_until(lambda: (queue.results / "a.log.out").exists(), 30, "a.log processed")
    assert (queue.results / "a.log.out").read_text() == "HELLO\n"

    cfg.write_text('{"version": 1, "nodes": [{"tag": "end2", "use": "no_such_processor"}]}')
    d.signal(signal.SIGHUP)
    failed = d.wait_event("config_reload_failed")
    assert "$.nodes[0].use" in failed["error"] and "no_such_processor" in failed["error"]
    queue.drop("b.log", "still upper\n")
    wait_until(lambda: (queue.results / "b.log.out").exists(), 30, "b.log processed")
    assert (queue.results / "b.log.out").read_text() == "STILL UPPER\n"

    lower = {"name": "low", "tag": "in", "use": "lower", "to": "end"}
    write_config(cfg, [lower], ["end"])
    d.signal(signal.SIGHUP)
    d.wait_event("config_reloaded")
    queue.drop("c.log", "NOW LOWER\n")
    wait_until(lambda: (queue.results / "c.log.out").exists(), 30, "c.log processed")
    assert (queue.results / "c.log.out").read_text() == "now lower\n"


def _main(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--log-format", "json", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_input_mode_prints_the_summary_and_exits_0(tmp_path: Path) -> None:
    src = tmp_path / "web01_20261122.log"
    src.write_text("2026-11-22 10:00:00 [ERROR] API: boom\n2026-11-22 10:00:01 [INFO] DB: ok\n")
    results = tmp_path / "results"
    run = _main("--input", str(src), "--results-dir", str(results))
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "processed" and summary["lines_in"] == 2
    assert summary["metadata"]["host"] == "web01"
    for out in summary["output_files"]:
        assert (results / out).exists()
    assert src.exists(), "--input only reads the file"
    again = json.loads(_main("--input", str(src), "--results-dir", str(results)).stdout)
    assert again["source"] == "web01_20261122~1.log", "second run does not overwrite the first"


def test_input_mode_exits_1_for_a_file_that_fails(tmp_path: Path) -> None:
    src = tmp_path / "bad.log"
    src.write_bytes(b"\xff\xfe\xfa not utf-8\n")
    run = _main("--input", str(src), "--results-dir", str(tmp_path / "r"))
    assert run.returncode == 1
    summary = json.loads(run.stdout)
    assert summary["status"] == "failed" and "offset" in summary["error"]["message"]


def test_input_mode_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    run = _main("--input", str(tmp_path / "nope.log"), "--results-dir", str(tmp_path / "r"))
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "no such file" in run.stderr


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--workers", "zero"], {}, "--workers"),
        (["--port", "70000"], {}, "--port"),
        ([], {"FOLDERD_SETTLE": "-1"}, "FOLDERD_SETTLE"),
        ([], {"FOLDERD_POLL": "maybe"}, "FOLDERD_POLL"),
        (["--log-format", "xml"], {}, "--log-format"),
        ([], {"FOLDERD_WORKER": "4"}, "did you mean FOLDERD_WORKERS?"),
    ],
)
def test_bad_settings_exit_2_with_one_line_naming_the_key(
    tmp_path: Path, args: list[str], env: dict[str, str], needle: str
) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")} | env
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--drain", "--watch-dir", str(tmp_path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=full,
    )  # fmt: skip
    assert run.returncode == 2
    assert needle in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_unusable_watch_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    run = _main("--drain", "--watch-dir", str(blocker / "watch"))
    assert run.returncode == 2
    assert "cannot use folder" in run.stderr and "Traceback" not in run.stderr


def test_an_urgent_file_dropped_last_is_the_next_one_claimed(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    cfg = tmp_path / "prio.json"
    slow = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    write_config(cfg, [slow], ["end"], priority=[{"folder": "urgent", "priority": 10}])
    (queue.dir("unprocessed") / "urgent").mkdir()
    d = start_daemon("--config", str(cfg), "--workers", "1")
    for i in range(30):  # 10 lines at 10 ms: ~0.1 s each, ~3 s of backlog for one worker
        queue.drop(f"n{i:02d}.log", "line\n" * 10)
    wait_until(lambda: len(d.events("file_claimed")) >= 2, 30, "the backlog started")
    queue.drop("urgent/now.log", "line\n")
    wait_until(lambda: len(queue.files("processed")) == 31, 60, "everything processed")
    claims = [e["path"] for e in d.events("file_claimed")]
    after = claims[claims.index("urgent/now.log") + 1 :]
    # FIFO would claim it last; by priority it is claimed as soon as it settles, while
    # about 0.3 s of the 3 s backlog has been worked through.
    assert len(after) >= 15, f"only {len(after)} of the 30 waited for it: {claims}"


def test_a_frozen_worker_is_named_by_health_and_the_others_carry_the_queue(
    queue: Queue, start_daemon, slow_config: Path
) -> None:
    d = start_daemon("--config", str(slow_config), "--workers", "2", "--port", "0",
                     dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    queue.drop("held.log", "line\n" * 400)  # ~4 s in flight
    pid = d.wait_event("file_started", path="held.log")["worker_pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:

            def workers_check() -> dict | None:
                checks = http.get("/health").json()["checks"]
                found = next(c for c in checks if c["name"] == "workers")
                return None if found["ok"] else found

            check = wait_until(workers_check, 30, "/health naming the frozen worker")
            assert f"frozen (SIGSTOP?): PID {pid}" in check["detail"]
            names = [f"more{i}.log" for i in range(6)]
            for name in names:
                queue.drop(name, "line\n")
            wait_until(lambda: set(names) <= set(queue.files("processed")), 30,
                       "the other worker carries the queue")  # fmt: skip
            assert "held.log" in queue.files("underprocess"), "kept, not failed"
            os.kill(pid, signal.SIGCONT)
            wait_until(lambda: workers_check() is None, 30, "healthy once continued")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: "held.log" in queue.files("processed"), 30, "held.log finished")
    assert queue.files("failed") == []


def test_the_job_queued_behind_a_frozen_worker_goes_to_a_live_one(
    queue: Queue, start_daemon, slow_config: Path
) -> None:
    """A worker holds the file it runs and the next one; when it is frozen, that next one
    is taken back and run by the other worker, and `file_started` names the worker that
    really started it, when it did (`file_assigned`, at --debug, names the first)."""
    d = start_daemon("--config", str(slow_config), "--workers", "2", "--debug")
    wait_until(lambda: len(d.events("worker_ready")) == 2, 30, "both workers ready")
    queue.drop("one.log", "line\n" * 300)  # 3 s in flight
    queue.drop("two.log", "line\n" * 300)
    first = {d.wait_event("file_started", path=n)["worker_pid"] for n in ("one.log", "two.log")}
    assert len(first) == 2, "one each"
    queue.drop("next.log", "line\n")  # both hold one: it queues behind one of them
    frozen = d.wait_event("file_assigned", path="next.log")["worker_pid"]
    (live,) = first - {frozen}
    os.kill(frozen, signal.SIGSTOP)
    try:
        taken = d.wait_event("jobs_taken_back", worker_pid=frozen)
        assert taken["paths"] == ["next.log"]
        wait_until(lambda: "next.log" in queue.files("processed"), 30,
                   "next.log processed by the live worker while the other is frozen")  # fmt: skip
        assert len(queue.files("underprocess")) == 1, "the frozen one keeps its own file"
    finally:
        os.kill(frozen, signal.SIGCONT)
    starts = d.events("file_started")
    assert [s["worker_pid"] for s in starts if s["path"] == "next.log"] == [live]
    wait_until(lambda: len(queue.files("processed")) == 3, 60, "the frozen one's file finished")
    summaries = queue.summaries()
    assert [summaries[n]["attempts"] for n in ("one.log", "two.log", "next.log")] == [1, 1, 1]
    assert not d.events("worker_died") and queue.files("failed") == []
