"""The real daemon speaks sd_notify: READY only once it serves, the watchdog from its loop."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import Queue, wait_until

# not serial: deadlines of 10 s and more on what takes milliseconds, nothing measured
pytestmark = pytest.mark.integration


class Listener:
    """systemd's side: a unix datagram socket collecting what the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def poll(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except BlockingIOError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.splitlines()))

    def first(self, key: str, value: str | None = None) -> int | None:
        for i, m in enumerate(self.poll()):
            if key in m and (value is None or m[key] == value):
                return i
        return None


@pytest.fixture
def listener(tmp_path: Path):
    lst = Listener(tmp_path / "notify.sock")
    yield lst
    lst.sock.close()


def test_the_daemon_notifies_systemd_through_its_whole_life(
    queue: Queue, start_daemon, listener: Listener, tmp_path: Path
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    d = start_daemon("--port", "0", env=env, dashboard=True, wait=False)
    wait_until(lambda: listener.first("READY", "1") is not None, 60, "READY=1")
    # READY=1 is sent only once recovery ran and the watcher and the dashboard are up.
    assert d.events("recovery_done") and d.events("watcher_started")
    assert d.events("dashboard_started")
    ready = listener.messages[listener.first("READY", "1")]
    assert "queued 0" in ready["STATUS"]

    queue.drop("a.log", "x\n")
    wait_until(lambda: queue.files("processed") == ["a.log"], 30, "a.log processed")
    wait_until(
        lambda: any("done 1" in m.get("STATUS", "") for m in listener.poll()), 10, "STATUS update"
    )
    # WATCHDOG=1 at half of WATCHDOG_USEC, from the main loop.
    wait_until(
        lambda: sum(1 for m in listener.poll() if m.get("WATCHDOG") == "1") >= 2,
        10,
        "watchdog pings",
    )

    d.signal(signal.SIGHUP)
    wait_until(lambda: listener.first("RELOADING", "1") is not None, 10, "RELOADING=1")
    reloading = listener.messages[listener.first("RELOADING", "1")]
    assert int(reloading["MONOTONIC_USEC"]) > 0
    i = listener.first("RELOADING", "1")
    wait_until(
        lambda: any(m.get("READY") == "1" for m in listener.poll()[i + 1 :]), 10, "READY again"
    )

    d.signal(signal.SIGTERM)
    assert d.wait_exit(30) == 0
    assert listener.first("STOPPING", "1") is not None


def test_a_paused_queue_says_so_on_the_status_line(
    start_daemon, listener: Listener, tmp_path: Path
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    start_daemon("--min-disk-free-mb", str(1 << 40), env=env)  # no disk has that much free

    def paused_status() -> str | None:
        lines = [m["STATUS"] for m in listener.poll() if m.get("STATUS", "").startswith("paused")]
        return lines[0] if lines else None

    line = wait_until(paused_status, 30, "a STATUS= line saying the queue is paused")
    assert "below the --min-disk-free-mb floor" in line and "queued 0" in line
