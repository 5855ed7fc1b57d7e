"""Commands with deadlines, and failures that show the last lines of the log behind them.

Every check of `make test-deploy` fails loudly: the command's own output and the last lines
of the daemon's, the engine's or the server's log that explain it. Beside them, what the
three parts share: a free port, a tarball unpacked, a stopwatch for the timings.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

T = TypeVar("T")
TAIL_LINES = 40


@dataclass(frozen=True)
class Log:
    """A log to show when a check fails: a name and how to read it now."""

    name: str
    read: Callable[[], str]

    @classmethod
    def file(cls, path: Path) -> Log:
        return cls(str(path), lambda: path.read_text(errors="replace") if path.exists() else "")


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def evidence(logs: Sequence[Log]) -> str:
    parts = []
    for log in logs:
        try:
            text = log.read()
        except Exception as exc:  # a log that cannot be read must not hide the failure
            text = f"(cannot read it: {type(exc).__name__}: {exc})"
        parts.append(f"--- last lines of {log.name} ---\n{tail(text) or '(empty)'}")
    return "\n".join(parts)


def fail(message: str, *logs: Log) -> NoReturn:
    pytest.fail(f"{message}\n{evidence(logs)}" if logs else message, pytrace=False)


def check(ok: object, message: str, *logs: Log) -> None:
    """`assert`, with the logs that explain a failure."""
    if not ok:
        fail(message, *logs)


def run(
    cmd: Sequence[str | Path],
    *,
    timeout: float,
    logs: Sequence[Log] = (),
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` to its end within `timeout` seconds. With `check`, a non-zero exit or the
    deadline fails the test with the command's output and the last lines of `logs`."""
    argv = [str(c) for c in cmd]
    # Its own session: at the deadline the whole command goes, children included.
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(input, timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        fail(f"{' '.join(argv)}: no end after {timeout:.0f} s\n{tail(out)}\n{tail(err)}", *logs)
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and done.returncode != 0:
        fail(f"{' '.join(argv)}: exit {done.returncode}\n{tail(out)}\n{tail(err)}", *logs)
    return done


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, *logs: Log) -> T:
    """Poll `predicate` until it returns something truthy; at the deadline, fail with the
    last lines of `logs`."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f} s waiting for {what}", *logs)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def unpack(tar: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    run(["tar", "-C", dest, "-xf", tar], timeout=120)
    return dest


class Stopwatch:
    """Times a block into `into[name]` (only when it ends without an exception)."""

    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.into[self.name] = time.monotonic() - self.start
