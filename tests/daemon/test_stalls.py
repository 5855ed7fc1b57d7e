"""A file whose worker makes no progress is reported, never silently held: /health names
it, where it is stuck and for how long; after --stall-kill-after its worker is killed and
the file retried, or held without counting the attempt when a sink is what hangs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Queue, wait_until

pytestmark = pytest.mark.integration

HANG = {"name": "hang", "tag": "hang", "use": "tests.dashboard.hang_plugin:hang", "to": "end"}


def _config(path: Path) -> Path:
    """hang*.log: a plugin that never returns; every other file: straight through."""
    config = {
        "version": 1,
        "routes": [{"glob": "hang*", "start": "hang"}, {"start": "end"}],
        "nodes": [HANG],
        "outputs": {"end": {}},
    }
    path.write_text(json.dumps(config))
    return path


def _stalled(http: httpx.Client) -> dict | None:
    checks = http.get("/health").json()["checks"]
    check = next(c for c in checks if c["name"] == "stalled")
    return None if check["ok"] else check


@pytest.mark.serial  # measures how soon /health reports the stall
def test_a_hung_plugin_is_named_by_health_killed_and_retried_while_others_flow(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    d = start_daemon("--config", str(_config(tmp_path / "hang.json")), "--workers", "2",
                     "--stall-timeout", "2", "--stall-kill-after", "5", "--max-attempts", "2",
                     "--port", "0", dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    with httpx.Client(base_url=url, timeout=10) as http:
        queue.drop("hang.log", "one line\n")
        d.wait_event("file_started", path="hang.log")
        started = time.monotonic()
        check = wait_until(lambda: _stalled(http), 30, "/health naming the stalled file")
        seen_after = time.monotonic() - started
        assert http.get("/health").status_code == 503
        assert "hang.log" in check["detail"] and "in node hang" in check["detail"]
        assert "no progress for" in check["detail"] and "killed at 5s" in check["detail"]
        assert 2 <= seen_after < 5, f"reported {seen_after:.1f}s after the file started"
        stalled = http.get("/api/status").json()["stalled"]
        assert [(s["path"], s["where"]) for s in stalled] == [("hang.log", "in node hang")]
        assert "stalled: " in http.get("/").text
        assert "folderd_files_stalled 1.0" in http.get("/metrics").text
        names = [f"flow{i}.log" for i in range(5)]
        for name in names:  # the other worker carries the queue meanwhile
            queue.drop(name, "x\n")
        wait_until(lambda: set(names) <= set(queue.files("processed")), 30, "others flow")
        wait_until(lambda: queue.files("failed") == ["hang.log"], 60, "failed after 2 kills")

        # the status the dashboard reads is a snapshot: it follows within a moment
        def unstalled() -> str | None:
            text = http.get("/metrics").text
            return text if "folderd_files_stalled 0.0" in text else None

        metrics = wait_until(unstalled, 10, "the stalled gauge back to 0")
        assert "folderd_stall_kills_total 2.0" in metrics
        assert _stalled(http) is None
    error = queue.summaries()["hang.log"]["error"]
    assert error["type"] == "Stalled"
    assert "no progress for" in error["message"] and "in node hang" in error["message"]
    assert "its worker was killed" in error["message"]
    assert "gave up after 2 attempts" in error["message"]
    kills = d.events("worker_kill")
    assert len(kills) == 2 and all(k["path"] == "hang.log" for k in kills)
    assert [e["where"] for e in d.events("file_stalled")] == ["in node hang"] * 2


def test_a_c_call_holding_the_gil_is_found_by_a_stack_dump_and_killed(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    """A regex that backtracks holds Python's lock: the worker's progress thread cannot
    run either, so the pool asks the worker's C signal handler for its stacks (SIGUSR1)."""
    config = tmp_path / "spin.json"
    node = {"name": "spin", "tag": "in", "use": "tests.daemon.regex_plugin:spin", "to": "end"}
    config.write_text(json.dumps({"version": 1, "routes": [{"start": "in"}], "nodes": [node],
                                  "outputs": {"end": {}}}))  # fmt: skip
    d = start_daemon("--config", str(config), "--workers", "1", "--stall-timeout", "3",
                     "--stall-kill-after", "8", "--max-attempts", "1", "--port", "0",
                     dashboard=True)  # fmt: skip
    url = d.wait_event("dashboard_started")["url"]
    queue.drop("spin.log", "one line\n")
    with httpx.Client(base_url=url, timeout=10) as http:
        check = wait_until(lambda: _stalled(http), 30, "/health naming the stalled file")
    assert "spin.log" in check["detail"]
    assert "in a node, at spin (tests/daemon/regex_plugin.py:12)" in check["detail"]
    assert "its progress thread is blocked too" in check["detail"]
    assert "(most recent call first)" in d.output(), "the dump went on to the daemon's stderr"
    wait_until(lambda: queue.files("failed") == ["spin.log"], 60, "killed, then failed")
    message = queue.summaries()["spin.log"]["error"]["message"]
    assert "at spin (tests/daemon/regex_plugin.py:12)" in message
    assert "its worker was killed" in message


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP endpoint that accepts connections, reads the request and never answers: an
    S3 server hung inside a request."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_sink_that_hangs_holds_its_file_without_counting_and_pauses_claiming(
    queue: Queue, start_daemon, tmp_path: Path, silent_server: str
) -> None:
    config = tmp_path / "deliver.json"
    config.write_text(json.dumps({
        "version": 1, "reader": {"type": "none"},
        "deliver": [{"type": "s3", "bucket": "mirror", "endpoint_url": silent_server,
                     "timeout_s": 600}],  # the sink's own deadline is far away
    }))  # fmt: skip
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "x",
           "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    d = start_daemon("--config", str(config), "--workers", "1", "--stall-timeout", "2",
                     "--stall-kill-after", "4", "--max-attempts", "1", env=env)  # fmt: skip
    queue.drop("mirror.log", "bytes to mirror\n")
    stalled = d.wait_event("file_stalled", path="mirror.log")
    assert stalled["where"] == "in sink deliver[0]"
    d.wait_event("worker_kill", path="mirror.log")
    held = d.wait_event("file_held", path="mirror.log")
    assert "no progress for" in held["error"] and "in sink deliver[0]" in held["error"]
    paused = d.wait_event("queue_paused")
    assert paused["cause"] == "sink_unavailable"
    # not counted: with --max-attempts 1 it would have failed; it waits for its sink instead
    wait_until(lambda: len(d.events("file_started")) >= 2, 30, "tried again later")
    assert queue.files("failed") == [] and queue.files("underprocess") == ["mirror.log"]
    assert [s["attempt"] for s in d.events("file_started")][:2] == [1, 1]
