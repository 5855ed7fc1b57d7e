"""A stopped daemon is gone with everything it started: under systemd, whatever is left in
the unit when the main process exits is killed with SIGKILL and logged at every stop (the
multiprocessing resource tracker was, every time)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Iterator

import psutil
import pytest

from tests.conftest import DaemonProcess, wait_until

pytestmark = pytest.mark.integration

PR_SET_CHILD_SUBREAPER = 36


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@pytest.fixture
def subreaper() -> Iterator[None]:
    """This test process adopts the orphans of the daemons it starts (instead of PID 1): a
    helper the daemon did not wait for becomes our child, which is certain, where watching
    for it to still exist would race with its own exit."""
    _set_subreaper(True)
    try:
        yield
    finally:
        _set_subreaper(False)


def _orphaned(pids: list[int]) -> list[int]:
    """Those of `pids` that became our children (the daemon exited without reaping them);
    each is reaped here, so none is left behind."""
    adopted = []
    for pid in pids:
        with contextlib.suppress(ChildProcessError):  # reaped by the daemon: not ours
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            adopted.append(pid)
    return adopted


@pytest.mark.parametrize("how", ["watch", "drain"])
def test_the_daemon_exits_after_its_resource_tracker_and_workers(
    start_daemon: Callable[..., DaemonProcess], subreaper: None, how: str
) -> None:
    daemon = start_daemon("--workers", "2", *(["--drain"] if how == "drain" else []), wait=False)
    # the resource tracker is the helper that multiprocessing's spawn starts beside workers
    helpers = wait_until(
        lambda: (
            (found := psutil.Process(daemon.pid).children())
            and any("resource_tracker" in " ".join(p.cmdline()) for p in found)
            and found
        ),
        30,
        "the workers and the resource tracker",
    )
    names = {
        p.pid: "resource_tracker" if "resource_tracker" in " ".join(p.cmdline()) else "worker"
        for p in helpers
    }
    if how == "watch":
        daemon.wait_ready()
        daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0, daemon.output()[-2000:]
    left = {pid: names[pid] for pid in _orphaned(list(names))}
    assert left == {}, daemon.output()[-2000:]
    # the workers' semaphores went before the tracker did: no "leaked", no failed unlink
    assert "Traceback" not in daemon.output() and "leaked" not in daemon.output()
