"""Every duration comes from the monotonic clock; the wall clock only stamps times. A wall
clock stepped back (NTP, a VM restored from a snapshot) must leave uptime, a summary's
duration, a sink's ages and the pipeline's live rates true.

The step is the wall clock's (`time.time`) alone, moved back an hour in this process, as
the kernel's CLOCK_REALTIME moves under NTP; the monotonic clock goes on as it does."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from config.loading import defaults
from daemon.attempt import Job, Status
from daemon.core import Daemon
from daemon.events import EventBus
from daemon.summary import Start
from daemon.worker import process_file
from dashboard.stats import Stats
from processors import load_file
from processors.loader import load
from tests.conftest import Queue, wait_until

STEP_S = 3600.0


@pytest.fixture
def step_back(monkeypatch: pytest.MonkeyPatch):
    """Call it to step this process's wall clock back an hour."""
    real = time.time

    def step() -> None:
        monkeypatch.setattr(time, "time", lambda: real() - STEP_S)

    return step


def test_uptime_and_a_sink_age_stay_true_when_the_wall_clock_steps_back(
    queue: Queue, tmp_path: Path, step_back
) -> None:
    config = tmp_path / "mirror.json"
    config.write_text(json.dumps({
        "version": 1, "reader": {"type": "none"},
        "deliver": [{"type": "s3", "bucket": "mirror", "endpoint_url": "http://127.0.0.1:9"}],
    }))  # fmt: skip
    settings = dataclasses.replace(
        defaults(), watch_dir=queue.root, results_dir=queue.results, workers=1, config=config
    )
    daemon = Daemon(settings, load_file(config), lambda: load_file(config))
    try:
        # what the loop does with a finished file's summary: the sink took a delivery
        delivery = {"sink": "deliver[0]", "bytes": 3, "seconds": 0.1}
        daemon.outcomes.sinks.observe(
            Start.now("u1", "a.log", "a.log", 1).processed(deliveries=(delivery,))
        )
        step_back()
        status = daemon._take_snapshot().as_dict()
        assert 0 <= status["uptime_s"] < 60, status["uptime_s"]
        assert status["started_at"] > time.time(), "the start is a timestamp, as it was"
        assert 0 <= status["sinks"][0]["last_ok_age_s"] < 60, status["sinks"]
    finally:
        daemon.journal.close()
        daemon._lock.release()


def test_a_summary_duration_is_measured_not_subtracted_from_the_wall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "a.log"
    src.write_text("line\n" * 10)
    tmp = tmp_path / "results" / ".folderd-tmp"
    tmp.mkdir(parents=True)
    pipeline = load({"version": 1, "routes": [{"start": "end"}], "outputs": {"end": {}}}).build()
    real, calls = time.time, []

    def wall() -> float:  # the attempt's start is read, then the clock steps back
        calls.append(None)
        return real() - (STEP_S if len(calls) > 1 else 0.0)

    monkeypatch.setattr(time, "time", wall)
    job = Job("u1", "a.log", "a.log", str(src), 1, str(tmp), False, size=src.stat().st_size)
    outcome = process_file(job, pipeline)
    assert outcome.status is Status.PROCESSED and len(calls) > 1
    summary = outcome.summary.to_json()
    assert 0 <= summary["duration_s"] < 60, summary["duration_s"]
    assert summary["finished_ts"] < summary["started_ts"], "timestamps are the wall's"


def test_live_rates_keep_counting_across_a_step_back(step_back) -> None:
    bus, heard = EventBus(), []
    bus.subscribe(heard.append)
    stats = Stats(CollectorRegistry())
    progress = {"tags": {"log": 100}, "processors": {}}
    bus.publish("file_started", uid="u", path="a.log")
    bus.publish("file_progress", uid="u", path="a.log", **progress)
    stats.apply(heard)
    heard.clear()
    step_back()
    bus.publish("file_progress", uid="u", path="a.log", tags={"log": 300}, processors={})
    stats.apply(heard)
    rates = stats.rates.per_second()
    assert rates["tag:log"] == pytest.approx(300 / stats.rates.window_s), rates


@pytest.mark.integration
def test_a_real_daemon_and_its_workers_keep_durations_true_across_a_step_back(
    queue: Queue, start_daemon, slow_config: Path, tmp_path: Path
) -> None:
    """The daemon and its workers, each its own interpreter, all see the wall clock step
    back an hour while a file is in flight (tests/daemon/stepped_clock)."""
    flag = tmp_path / "stepped"
    env = {"PYTHONPATH": str(Path(__file__).parent / "stepped_clock"),
           "TEST_WALL_CLOCK_STEP": str(flag)}  # fmt: skip
    d = start_daemon("--config", str(slow_config), "--workers", "1", "--port", "0",
                     env=env, dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    with httpx.Client(base_url=url, timeout=10) as http:
        before = http.get("/api/status").json()
        queue.drop("a.log", "line\n" * 200)  # 2 s in its worker
        d.wait_event("file_started", path="a.log")
        flag.touch()
        wait_until(lambda: queue.files("processed") == ["a.log"], 30, "a.log processed")
        after = http.get("/api/status").json()
    assert before["uptime_s"] <= after["uptime_s"] < 600, (before, after)
    assert after["started_at"] == before["started_at"], "the start stays a timestamp"
    summary = queue.summaries()["a.log"]
    assert 1.0 <= summary["duration_s"] < 600, summary["duration_s"]
    assert summary["finished_ts"] < summary["started_ts"], "the stamps are the wall's"
