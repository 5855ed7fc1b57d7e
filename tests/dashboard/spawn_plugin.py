"""User processors that start a shell with a `sleep` in the background, as a plugin that
runs a command may: `sleep 40; echo done > f` when the shell is left running. Each line
names a directory where the shell writes its pid, the sleep's pid, and `done` at the end."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

SCRIPT = "sleep 40 & echo $! > {d}/sleep.pid; echo $$ > {d}/sh.pid; wait; echo done > {d}/done"


def _written(path: Path) -> bool:
    try:
        return path.read_text().strip() != ""
    except FileNotFoundError:
        return False


def _spawn(line: str) -> None:
    """Start the shell; return once it wrote both pids."""
    where = Path(line.strip())
    subprocess.Popen(["sh", "-c", SCRIPT.format(d=shlex.quote(str(where)))])
    deadline = time.monotonic() + 20
    while not (_written(where / "sh.pid") and _written(where / "sleep.pid")):
        if time.monotonic() > deadline:
            raise TimeoutError("the shell wrote no pids")
        time.sleep(0.01)


def spawn_and_hang(line: str) -> str:
    _spawn(line)
    while True:
        time.sleep(0.05)


def spawn_and_return(line: str) -> str:
    _spawn(line)
    return line


def server_pid(line: str) -> str:
    """The preview's parent: the preview server's pid."""
    return str(os.getppid())
