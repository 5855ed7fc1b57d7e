"""What one preview may leave behind, and how it is taken away: its temp directory and the
processes it started.

Each preview runs in a process of its own (`dashboard.sandbox`), in a new session, so
that it and everything it starts form one process group, and with `TMPDIR` pointing into
a scratch directory of its own: every temp file it (or a plugin, or a program a plugin
runs) makes through the usual means lands there. When the preview ends — answered, timed
out, crashed — `end()` kills its group and any process it started that left the group
(the preview server is their subreaper, so they cannot slip away to init), and the
scratch directory is removed with everything in it.

If the daemon itself is killed (SIGKILL, OOM) nothing runs to do that. So a scratch
directory's name holds its owner, the preview server, by pid and start time; at start-up
`sweep()` removes the directories of owners that are gone, and kills the processes whose
`TMPDIR` is one of them (a preview's leftovers, still running a plugin's command).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger(__name__)

PREFIX = "folderd-preview-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-")
_PR_SET_CHILD_SUBREAPER = 36
_REAP_S = 5.0


def _started(proc: psutil.Process) -> int:
    """When `proc` started, in hundredths of a second since the epoch (with its pid, an
    identity no later process can share)."""
    return round(proc.create_time() * 100)


def create() -> Path:
    """A new scratch directory in the system temp dir, owned by this process."""
    me = psutil.Process()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{me.pid}-{_started(me)}-"))


def become_subreaper() -> None:
    """Orphans among this process's descendants are re-parented to it, not to init, so
    `end()` finds and reaps them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)


def end(pid: int) -> int:
    """Kill the preview `pid` (a child of this process that leads its own session), its
    process group and every other process descended from this one, and reap them all;
    return how many processes besides `pid` were reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # unreaped, `pid` cannot be reused by another group
    with contextlib.suppress(ChildProcessError):  # once it is gone, its orphans are ours
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    reaped: set[int] = set()
    deadline = time.monotonic() + _REAP_S
    while True:
        try:
            while got := os.waitpid(-1, os.WNOHANG)[0]:
                reaped.add(got)
        except ChildProcessError:
            # No child left, so no descendant: each orphan becomes our child as it is
            # orphaned (we are its subreaper), and stays one until we reap it.
            break
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):  # left the group too
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        if time.monotonic() > deadline:
            log.warning("preview_processes_left", pid=pid, waited_s=_REAP_S)
            break
        time.sleep(0.005)
    return len(reaped - {pid})


def remove(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class Swept:
    dirs: int
    processes: int
    bytes: int


def _owner_alive(pid: int, started: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(_started(proc) - started) <= 1 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def sweep(tmp: Path | None = None) -> Swept:
    """Remove the scratch directories (ours, in `tmp`: the system temp dir by default)
    whose owner is gone, and kill the processes still running in them."""
    root = Path(tmp or tempfile.gettempdir())
    dead = []
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            match = _NAME.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                    continue  # another user's: neither ours to judge nor to remove
                if not _owner_alive(int(match.group(1)), int(match.group(2))):
                    dead.append(Path(entry.path))
    if not dead:
        return Swept(0, 0, 0)
    killed = _kill_running_in({str(d) for d in dead})
    size = sum(_size(d) for d in dead)
    for d in dead:
        remove(d)
    swept = Swept(len(dead), killed, size)
    log.info("preview_leftovers_swept", dirs=swept.dirs, processes=killed, bytes=size)
    return swept


def _kill_running_in(scratches: set[str]) -> int:
    """Kill this user's processes whose TMPDIR is one of `scratches`; how many."""
    found = 0
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.uids().real == os.getuid() and proc.environ().get("TMPDIR") in scratches:
                proc.kill()  # not our child: init (or its subreaper) reaps it
                found += 1
    return found
