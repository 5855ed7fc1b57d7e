"""The worker pool: a death is charged only to the file that was running."""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from multiprocessing.connection import wait
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.attempt import Job
from daemon.pool import DEEP, PREFETCH, QUICK_S, SMALL_BYTES, WorkerPool
from processors.loader import load
from tests.conftest import wait_until
from tests.daemon.slow_plugin import die_at_start

PASS_THROUGH = {"version": 1, "routes": [{"start": "end"}], "nodes": [], "outputs": {"end": {}}}
SLOW = {
    "version": 1,
    "routes": [{"start": "in"}],
    "nodes": [{"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}],
    "outputs": {"end": {}},
}


@pytest.fixture
def pool_factory():
    pools: list[WorkerPool] = []

    def make(size: int, config: dict, **kw) -> WorkerPool:
        pool = WorkerPool(size, load(config), **kw)
        pool.start()
        pools.append(pool)
        return pool

    yield make
    for p in pools:
        p.close(timeout=2)


def _job(tmp_path: Path, name: str, lines: int = 3) -> Job:
    src = tmp_path / name
    src.write_text("line\n" * lines)
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return Job(uuid.uuid4().hex, name, name, str(src), 1, str(tmp), False)


def _pump(pool: WorkerPool, done: list) -> None:
    pool.maintain()
    done.extend(pool.collect(wait(pool.handles(), 0.05)))


def test_jobs_go_only_to_started_workers_and_come_back_with_outcomes(
    pool_factory, tmp_path: Path
) -> None:
    pool = pool_factory(2, PASS_THROUGH)
    done: list = []
    wait_until(lambda: _pump(pool, done) or len(pool.free()) == 4, 30, "both workers ready")
    jobs = [_job(tmp_path, f"f{i}.log") for i in range(4)]
    for slot, job in zip(pool.free(), jobs, strict=True):
        assert pool.submit(slot, job)
    wait_until(lambda: _pump(pool, done) or len(done) == 4, 30, "four outcomes")
    assert {j.rel for j, _ in done} == {"f0.log", "f1.log", "f2.log", "f3.log"}
    assert all(o.status == "processed" for _, o in done)


def test_a_killed_worker_charges_its_running_job_and_returns_the_prefetched_one(
    pool_factory, tmp_path: Path
) -> None:
    pool = pool_factory(1, SLOW)
    done: list = []
    wait_until(lambda: _pump(pool, done) or pool.free(), 30, "worker ready")
    running, queued = _job(tmp_path, "running.log", 1000), _job(tmp_path, "queued.log")
    slot = pool.free()[0]
    assert pool.submit(slot, running) and pool.submit(slot, queued)
    os.kill(slot.pid, signal.SIGKILL)
    wait_until(lambda: _pump(pool, done) or len(done) == 2, 30, "both jobs back")
    outcomes = {j.rel: o.status for j, o in done}
    assert outcomes == {"running.log": "retry", "queued.log": "unstarted"}
    wait_until(lambda: _pump(pool, done) or pool.free(), 30, "a new worker ready")
    assert pool.deaths == 1


def test_a_death_is_charged_to_the_file_being_run_not_one_finished_before_it(
    pool_factory, tmp_path: Path
) -> None:
    """With several jobs held, the file charged for a death is the one whose pipeline was
    running (the worker says which, in shared memory), not the oldest it still holds."""
    pool = pool_factory(1, SLOW)
    done: list = []
    wait_until(lambda: _pump(pool, done) or pool.free(), 30, "worker ready")
    first, running = _job(tmp_path, "first.log", 1), _job(tmp_path, "running.log", 1000)
    slot = pool.free()[0]
    assert pool.submit(slot, first) and pool.submit(slot, running)
    wait_until(lambda: slot.shared.running.value == 2, 30, "the second job's pipeline running")
    os.kill(slot.pid, signal.SIGKILL)
    wait_until(lambda: _pump(pool, done) or len(done) == 2, 30, "both jobs back")
    outcomes = {j.rel: o.status for j, o in done}
    assert outcomes["running.log"] == "retry"
    # committed and sent before the kill, or killed while its commit was on the way
    assert outcomes["first.log"] in {"processed", "unstarted"}, "never charged"


def test_a_quick_worker_holds_more_small_files_but_none_behind_a_big_one(
    pool_factory, tmp_path: Path
) -> None:
    """In a burst of small, quick files each worker may hold up to DEEP, so its commit
    thread has several finished files to sync as one group; after a slow file, or while
    it holds a big one, only PREFETCH (one running, one next)."""
    quick = pool_factory(1, PASS_THROUGH)
    done: list = []
    wait_until(lambda: _pump(quick, done) or quick.free(), 30, "worker ready")
    assert len(quick.free()) == PREFETCH, "no file seen yet: the usual depth"
    assert quick.submit(quick.free()[0], _job(tmp_path, "small.log"))
    wait_until(lambda: _pump(quick, done) or done, 30, "the first outcome")
    assert done[0][1].summary.duration_s < QUICK_S
    assert len(quick.free()) == DEEP, "quick on small files: may hold up to DEEP"
    big = dataclasses.replace(_job(tmp_path, "big.log"), size=SMALL_BYTES + 1)
    slot = quick.next_free()
    assert slot is not None and quick.submit(slot, big)
    assert len(quick.free()) == PREFETCH - 1, "nothing queues deep behind a big file"

    slow = pool_factory(1, SLOW)
    done = []
    wait_until(lambda: _pump(slow, done) or slow.free(), 30, "slow worker ready")
    assert slow.submit(slow.free()[0], _job(tmp_path, "slow.log", 20))  # 20 x 10 ms
    wait_until(lambda: _pump(slow, done) or done, 30, "the slow outcome")
    assert len(slow.free()) == PREFETCH, "after a slow file: the usual depth"


def test_workers_that_cannot_start_get_no_jobs_and_are_retried_with_backoff(
    pool_factory,
) -> None:
    pool = pool_factory(1, PASS_THROUGH, worker_init=die_at_start)
    done: list = []
    with capture_logs() as logs:
        failures = lambda: [e for e in logs if e["event"] == "worker_start_failed"]  # noqa: E731
        wait_until(lambda: _pump(pool, done) or failures(), 30, "start failure seen")
        assert pool.free() == [] and pool.alive_count() == 0 and done == []
        wait_until(lambda: _pump(pool, done) or len(failures()) >= 2, 30, "a second attempt")
    first, second = failures()[:2]
    assert (first["failures_in_a_row"], second["failures_in_a_row"]) == (1, 2)
    assert second["retry_in_s"] == 2 * first["retry_in_s"], "each attempt waits twice as long"
    assert done == [], "no job was charged for a worker that never started"
