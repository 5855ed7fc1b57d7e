"""A durable burst killed at many points: whatever the instant, every input in processed/
has its complete results, and after restarts every input is processed exactly once.

The results of a file are synced together (`daemon.commit`), after all of them were
written, and in a burst a worker's commit thread syncs several finished files as one group
(`daemon.pool`): a kill between the writes and the sync, between the sync and the
renames, or between one file of a group and the next, must still never leave a moved
input with a missing or short result. A SIGKILL keeps the
page cache, so this proves the order of writes, renames and moves; that a power cut
finds the renamed results on disk rests on the sync before the rename and the directory
fsync after it (see daemon/commit.py).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import ROOT, Queue, assert_exactly_once, sha256_of, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.serial]

LEVELS = ("INFO", "ERROR", "WARN", "DEBUG")


def _log(i: int) -> str:
    lines = [f"2024-01-05 10:00:{j % 60:02d} [{LEVELS[(i + j) % 4]}] API: file {i} line {j}"
             for j in range(i % 7 + 3)]  # fmt: skip
    return "\n".join([*lines, f"not a log line {i}"]) + "\n"


def _check_moved_inputs_have_complete_results(queue: Queue) -> int:
    """Each input in processed/ against its summary and its outputs, as they are on disk."""
    summaries = queue.summaries()
    done = queue.files("processed")
    for name in done:
        s = summaries.get(name)
        assert s is not None, f"{name} is in processed/ without its summary"
        assert s["sha256"] == sha256_of(queue.dir("processed") / name), name
        for suffix, lines in s["outputs"].items():
            out = queue.results / f"{name}.{suffix}"
            assert out.exists(), f"{name}: {out.name} listed in its summary is missing"
            assert len(out.read_bytes().splitlines()) == lines, f"{out.name} is short"
    return len(done)


def _committed_unmoved(queue: Queue) -> set[str]:
    """Inputs still in underprocess/ whose results (summary last) were all committed."""
    summaries = queue.summaries()
    return {n for n in queue.files("underprocess") if n in summaries}


@pytest.mark.timeout(300)  # 60-100 s alone on two loaded cores
def test_a_durable_burst_killed_at_many_points_loses_and_tears_nothing(
    queue: Queue, start_daemon: object
) -> None:
    names = [f"h{i:03d}_2024010{1 + i % 9}.log" for i in range(600)]
    for i, name in enumerate(names):
        queue.drop(name, _log(i))
    config = str(ROOT / "pipeline_config.json")  # five outputs per input: more to sync
    marks = (1, 30, 60, 120, 200, 300, 400, 500)
    committed: set[str] = set()  # committed before a kill, input not moved yet
    rerun: set[str] = set()  # of those, run again after the restart
    for mark in (*marks, None):
        d = start_daemon("--config", config, "--workers", "2")  # type: ignore[operator]
        recovered = {e["path"] for e in d.events("file_recovered") if e["committed"]}
        assert recovered == committed, "a committed file was not recognised at restart"
        if mark is None:
            break
        wait_until(lambda m=mark: len(queue.files("processed")) >= m, 60, f"{mark} processed")
        os.killpg(d.pid, signal.SIGKILL)  # the daemon and its workers, as a power cut would
        d.proc.wait(30)
        rerun |= committed & {e["path"] for e in d.events("file_started")}
        assert _check_moved_inputs_have_complete_results(queue) >= mark
        committed = _committed_unmoved(queue)
    wait_until(lambda: len(queue.files("processed")) == len(names), 120, "all processed")
    rerun |= committed & {e["path"] for e in d.events("file_started")}
    assert not rerun, f"run again although committed before a kill: {sorted(rerun)}"
    _check_moved_inputs_have_complete_results(queue)
    assert_exactly_once(queue, names)
    assert not any(Path(queue.results, ".folderd-tmp").glob("*")), "temps left behind"
