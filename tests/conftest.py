"""Shared fixtures: a queue in tmp_path, a real daemon process, waiting with deadlines."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Hypothesis's 200 ms per example is a timing assertion: four test processes on two cores
# break it without anything being wrong. Performance is measured in bench/, not here.
settings.register_profile("folderd", deadline=None)
settings.load_profile("folderd")

ROOT = Path(__file__).resolve().parent.parent


def log_events(path: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The JSON events of a daemon's log (`name`'s only, if given); other lines skipped."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict) and (name is None or ev.get("event") == name):
            out.append(ev)
    return out


STATES = ("unprocessed", "underprocess", "processed", "failed")


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Queue:
    """A watch_dir + results_dir pair in tmp_path, with helpers to look at them."""

    def __init__(self, base: Path) -> None:
        self.root = base / "watch_dir"
        self.results = base / "results"
        for s in STATES:
            (self.root / s).mkdir(parents=True, exist_ok=True)
        self.results.mkdir(exist_ok=True)

    def dir(self, state: str) -> Path:
        return self.root / state

    def drop(self, rel: str, data: bytes | str, atomic: bool = True) -> Path:
        """Put a file into unprocessed/ (atomically by default: temp name + rename)."""
        raw = data.encode() if isinstance(data, str) else data
        dest = self.dir("unprocessed") / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp") if atomic else dest
        tmp.write_bytes(raw)
        if atomic:
            tmp.rename(dest)
        return dest

    def files(self, state: str) -> list[str]:
        top = self.dir(state)
        out = []
        for dirpath, _, names in os.walk(top):
            for n in names:
                out.append(os.path.relpath(os.path.join(dirpath, n), top))
        return sorted(out)

    def summaries(self) -> dict[str, dict[str, Any]]:
        """Every result summary, by the input name it describes."""
        out = {}
        for p in self.results.rglob("*.json"):
            if ".folderd-tmp" in p.parts:
                continue
            data = json.loads(p.read_text())
            out[data["source"]] = data
        return out

    def temp_results(self) -> list[Path]:
        tmp = self.results / ".folderd-tmp"
        return list(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return Queue(tmp_path)


class DaemonProcess:
    """`python main.py` as a real child process, its JSON log lines captured in a file."""

    def __init__(
        self,
        queue: Queue,
        log_path: Path,
        args: list[str],
        env: dict[str, str],
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.queue = queue
        self.log_path = log_path
        self._log = log_path.open("ab")
        cmd = [
            *prefix, sys.executable, str(ROOT / "main.py"),
            "--watch-dir", str(queue.root), "--results-dir", str(queue.results),
            "--log-format", "json", *args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return log_events(self.log_path, name)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_event(self, name: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            if self.proc.poll() is not None and not self._has(name, match):
                pytest.fail(f"daemon exited ({self.proc.returncode}):\n{self.output()[-3000:]}")
            return self._has(name, match)

        return wait_until(found, timeout, f"log event {name} {match or ''}")

    def _has(self, name: str, match: dict[str, Any]) -> dict[str, Any] | None:
        for ev in self.events(name):
            if all(ev.get(k) == v for k, v in match.items()):
                return ev
        return None

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.wait_event("daemon_started", timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon did not exit within {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the daemon process only (as `kill -9 PID` would); its workers die with it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._log.close()


@pytest.fixture
def start_daemon(queue: Queue, tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start `main.py` on the test's queue; every daemon started is killed at teardown."""
    started: list[DaemonProcess] = []

    def start(
        *args: str,
        wait: bool = True,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
        dashboard: bool = False,
    ) -> DaemonProcess:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
        full_env.update(env or {})
        defaults = ["--settle", "0.2", "--no-dashboard", "--retry-backoff", "0.1"]
        if dashboard:  # tests/dashboard/ start it with --port 0 and read its URL from the log
            defaults.remove("--no-dashboard")
        log_path = tmp_path / f"daemon-{len(started)}.log"
        d = DaemonProcess(queue, log_path, [*defaults, *args], full_env, prefix)
        started.append(d)
        if wait:
            d.wait_ready()
        return d

    yield start
    for d in started:
        d.close()


def write_config(path: Path, nodes: list[dict[str, Any]], outputs: list[str], **extra: Any) -> Path:
    """A pipeline_config.json routing every file to the tag `in` (`extra`: more top-level
    keys, e.g. priority)."""
    config = {
        "version": 1,
        "routes": [{"start": "in"}],
        "nodes": nodes,
        "outputs": {name: {} for name in outputs},
        **extra,
    }
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def slow_config(tmp_path: Path) -> Path:
    """Every line takes 10 ms: a 400-line file stays in flight for about 4 s."""
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    return write_config(tmp_path / "slow_pipeline.json", [node], ["end"])


def assert_exactly_once(queue: Queue, names: list[str]) -> None:
    """Every input processed once: in processed/, one summary each, sha256 matching."""
    processed = queue.files("processed")
    assert sorted(processed) == sorted(names), "processed/ differs from what was dropped"
    assert queue.files("underprocess") == []
    assert queue.files("unprocessed") == []
    summaries = queue.summaries()
    for name in names:
        s = summaries[name]
        assert s["status"] == "processed", s
        assert s["sha256"] == sha256_of(queue.dir("processed") / name), name
    json_files = [p for p in queue.results.rglob("*.json") if ".folderd-tmp" not in p.parts]
    assert len(json_files) == len(names), "an input has more than one summary"
