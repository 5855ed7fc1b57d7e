"""The summary's JSON is a public format (docs/reference/summary.md): its keys, their
order and their types are pinned here for a processed, a failed, a retried and a crashed
attempt, each made the way the daemon makes it, so a drift fails a test."""

from __future__ import annotations

import json
import os
import signal
import uuid
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import orjson
import pytest

from daemon.attempt import Job, Outcome, Status
from daemon.pool import WorkerPool
from daemon.provenance import Provenance
from daemon.states import Claimed
from daemon.summary import Summary, given_up
from daemon.worker import process_file
from processors import load_file
from processors.loader import load
from tests.conftest import wait_until

CONFIG = {
    "version": 1,
    "description": "pinned",
    "routes": [{"regex": r"^(?P<host>\w+)_\d+\.log$", "start": "in"}],
    "nodes": [{"name": "up", "tag": "in", "use": "upper", "to": "end"}],
    "outputs": {"end": {"suffix": "out"}},
}
HEAD = ["uid", "source", "original_name", "status", "attempts", "started", "started_ts",
        "provenance"]  # fmt: skip
END = ["finished", "finished_ts", "duration_s"]
COUNTS = ["start_tag", "lines_in", "lines_truncated", "lines_skipped", "lines_out", "tags",
          "outputs", "dropped", "added", "unrouted", "unrouted_tags", "metadata", "aggregates",
          "processors"]  # fmt: skip
TYPES = {
    "uid": str, "source": str, "original_name": str, "status": str, "attempts": int,
    "started": str, "started_ts": float, "provenance": dict, "error": dict, "sha256": str,
    "size": int, "start_tag": str, "lines_in": int, "lines_truncated": int,
    "lines_skipped": int, "lines_out": int, "tags": dict, "outputs": dict, "dropped": int,
    "added": int, "unrouted": int, "unrouted_tags": dict, "metadata": dict,
    "aggregates": dict, "processors": dict, "output_files": list, "finished": str,
    "finished_ts": float, "duration_s": float,
}  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Provenance, Any]:
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps(CONFIG))
    loaded = load_file(config)
    (tmp_path / "results" / ".folderd-tmp").mkdir(parents=True)
    return tmp_path, Provenance.of(config, loaded), loaded


def _job(tmp_path: Path, prov: Provenance, name: str, data: bytes, **kw: Any) -> Job:
    src = tmp_path / name
    src.write_bytes(data)
    tmp = tmp_path / "results" / ".folderd-tmp"
    return Job(uuid.uuid4().hex, name, name, str(src), 1, str(tmp), False, size=len(data),
               provenance=prov, **kw)  # fmt: skip


def _typed(data: dict[str, Any]) -> None:
    for key, value in data.items():
        assert isinstance(value, TYPES[key]), (key, value)
    assert data["started"].endswith("Z") and len(data["uid"]) == 32


def _committed(outcome: Outcome) -> dict[str, Any]:
    """The summary as written to its temp file, the one the commit renames into results/."""
    (path,) = [tmp for tmp, final in outcome.temps if final.endswith(".json")]
    return orjson.loads(Path(path).read_bytes())


def test_a_processed_summary(setup) -> None:
    tmp_path, prov, loaded = setup
    job = _job(tmp_path, prov, "web_1.log", b"a\nb\n")
    outcome = process_file(job, loaded.build())
    assert outcome.status is Status.PROCESSED and outcome.summary is not None
    data = _committed(outcome)
    assert list(data) == [*HEAD, "sha256", "size", *COUNTS, "output_files", *END]
    _typed(data)
    assert data["status"] == "processed" and data["attempts"] == 1 and data["size"] == 4
    assert data["output_files"] == ["web_1.log.out"] and data["metadata"] == {"host": "web"}
    assert list(data["provenance"]) == ["folderd", "config", "instance", "host", "route"]
    assert list(data["provenance"]["route"]) == ["index", "start", "reader", "describe"]
    assert data == outcome.summary.to_json(), "what is written is the value's JSON"
    assert Summary.from_json(data) == outcome.summary, "read back, the same value"


def test_a_failed_summary(setup) -> None:
    tmp_path, prov, loaded = setup
    job = _job(tmp_path, prov, "web_2.log", b"ok\n\0binary\n")
    outcome = process_file(job, loaded.build())
    assert outcome.status is Status.FAILED
    data = _committed(outcome)
    assert list(data) == [*HEAD, "error", "sha256", "size", *END]
    _typed(data)
    assert data["status"] == "failed" and data["error"]["type"] == "BinaryInput"
    assert list(data["error"]) == ["type", "message", "processor", "tag", "line"]
    assert Summary.from_json(data).to_json() == data


def test_a_retried_attempts_summary_says_why_and_is_never_committed(setup) -> None:
    tmp_path, prov, loaded = setup
    job = _job(tmp_path, prov, "web_3.log", b"a\n", claimed=Claimed(999, 0, 0))  # not as claimed
    outcome = process_file(job, loaded.build())
    assert outcome.status is Status.RETRY and outcome.temps == []
    assert outcome.summary is not None
    data = outcome.summary.to_json()
    assert list(data) == [*HEAD, "error", *END]
    _typed(data)
    assert data["status"] == "failed" and data["error"]["type"] == "InputChanged"


def test_a_crashed_attempts_summary_names_the_death(setup) -> None:
    tmp_path, prov, _ = setup
    slow = {**CONFIG, "nodes": [{"name": "slow", "tag": "in", "to": "end",
                                 "use": "tests.daemon.slow_plugin:slow"}]}  # fmt: skip
    pool = WorkerPool(1, load(slow))
    pool.start()
    done: list[tuple[Job, Outcome]] = []

    def pump() -> None:
        pool.maintain()
        done.extend(pool.collect(wait(pool.handles(), 0.05)))

    try:
        wait_until(lambda: pump() or pool.free(), 30, "the worker is ready")
        job = _job(tmp_path, prov, "web_4.log", b"line\n" * 2000)
        assert pool.submit(pool.free()[0], job)
        wait_until(lambda: pump() or pool.slots[0].current == job.uid, 30, "the job started")
        os.kill(pool.slots[0].pid or 0, signal.SIGKILL)
        wait_until(lambda: pump() or done, 30, "the death is collected")
    finally:
        pool.close(timeout=2)
    ((_, outcome),) = done
    assert outcome.status is Status.RETRY and outcome.summary is not None
    data = outcome.summary.to_json()
    assert list(data) == [*HEAD, "error", *END]
    _typed(data)
    assert data["error"] == {
        "type": "ChildProcessError",
        "message": "worker process died (killed by signal 9 (SIGKILL))",
    }


def test_a_given_up_summary(setup) -> None:
    _, prov, _ = setup
    error = {"type": "OSError", "message": "[errno 5] EIO (gave up after 3 attempts)"}
    data = given_up("f" * 32, "sub/a.log", "sub/a.log", 3, 10, error, prov).to_json()
    assert list(data) == [*HEAD, "error", "size", "output_files", *END]
    _typed(data)
    assert data["output_files"] == [] and "route" not in data["provenance"]


def test_names_that_are_not_utf8_are_written_shown_and_read_back_as_they_were() -> None:
    name = os.fsdecode(b"caf\xe9.log")
    summary = given_up("f" * 32, name, name, 0, 1, {"type": "Rejected", "message": "empty"})
    data = summary.to_json()
    assert data["source"] == data["original_name"] == "caf\\xe9.log"
    assert Summary.from_json(orjson.loads(orjson.dumps(data))) == summary


def test_a_summary_is_processed_or_failed_never_an_outcome_of_another_kind() -> None:
    summary = given_up("f" * 32, "a.log", "a.log", 1, 1, {"type": "X", "message": "x"})
    with pytest.raises(ValueError, match="processed or failed"):
        Summary(**{**summary.__dict__, "status": Status.RETRY})
