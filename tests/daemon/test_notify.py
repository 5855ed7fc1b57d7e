"""The notify protocol as systemd sees it: datagrams arriving on a real unix socket."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.notify import SystemdNotifier


def _receive(sock: socket.socket) -> dict[str, str]:
    """One datagram as systemd parses it: newline-separated KEY=VALUE assignments."""
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its NOTIFY_SOCKET value."""
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)  # a missing datagram fails the test instead of hanging it
        yield sock, str(path)


@pytest.fixture
def abstract_listener() -> Iterator[tuple[socket.socket, str]]:
    name = f"folderd-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        yield sock, "@" + name


def test_without_notify_socket_every_call_is_a_silent_no_op() -> None:
    notifier = SystemdNotifier.from_environ({"WATCHDOG_USEC": "30000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    with capture_logs() as logs:
        notifier.ready("up")
        notifier.status("queued=1")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
    assert logs == []


def test_ready_carries_the_status_in_the_same_datagram(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    notifier.ready("unprocessed=3 underprocess=1")
    assert _receive(sock) == {"READY": "1", "STATUS": "unprocessed=3 underprocess=1"}


def test_each_state_arrives_as_systemd_expects(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": address})
    notifier.ready()
    assert _receive(sock) == {"READY": "1"}
    notifier.status("unprocessed=0 failed=2")
    assert _receive(sock) == {"STATUS": "unprocessed=0 failed=2"}
    notifier.stopping()
    assert _receive(sock) == {"STOPPING": "1"}


def test_reloading_sends_the_monotonic_clock_notify_reload_needs(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": address})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = _receive(sock)
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after


def test_a_newline_in_the_status_cannot_inject_another_assignment(listener) -> None:
    sock, address = listener
    SystemdNotifier.from_environ({"NOTIFY_SOCKET": address}).status("bad name\nREADY=1")
    assert _receive(sock) == {"STATUS": "bad name READY=1"}


def test_watchdog_interval_is_half_of_watchdog_usec_and_pings_arrive(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier.from_environ(
        {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert notifier.watchdog_interval == 15.0
    notifier.watchdog()
    assert _receive(sock) == {"WATCHDOG": "1"}


def test_watchdog_meant_for_another_process_is_ignored(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier.from_environ(
        {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    )
    assert notifier.enabled
    assert notifier.watchdog_interval is None
    notifier.watchdog()  # must send nothing: the next datagram is the status below
    notifier.status("still here")
    assert _receive(sock) == {"STATUS": "still here"}


@pytest.mark.parametrize("usec", ["", "0", "soon"])
def test_no_usable_watchdog_usec_means_no_watchdog(listener, usec: str) -> None:
    _, address = listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": usec})
    assert notifier.watchdog_interval is None


def test_abstract_socket_names_start_with_an_at_sign(abstract_listener) -> None:
    sock, address = abstract_listener
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": address})
    notifier.ready("abstract")
    assert _receive(sock) == {"READY": "1", "STATUS": "abstract"}


def test_unsupported_address_disables_notify_with_a_warning() -> None:
    with capture_logs() as logs:
        notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert [entry["event"] for entry in logs] == ["notify_socket_unsupported"]


def test_a_vanished_socket_warns_once_and_never_raises(tmp_path: Path) -> None:
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with capture_logs() as logs:
        notifier.ready()
        notifier.status("a")
        notifier.stopping()
    assert [entry["event"] for entry in logs] == ["notify_failed"]
    assert logs[0]["log_level"] == "warning"


def test_sending_resumes_when_the_socket_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "late.sock"
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": str(path)})
    with capture_logs() as logs:
        notifier.status("nobody listening")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(5)
            notifier.status("back")
            assert _receive(sock) == {"STATUS": "back"}
    assert [entry["event"] for entry in logs] == ["notify_failed", "notify_recovered"]
