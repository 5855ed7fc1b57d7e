"""A flood of half-sent requests against a real daemon with a low open-file limit: /health
keeps answering, files keep flowing, the flood's connections time out, and the log stays
small. (bench/bench_flood.py measures the same with a flood that reconnects.)"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

NOFILE = 512  # the daemon's soft and hard limit: it cannot raise it
FLOOD = 600  # more connections than it has descriptors
HTTP_TIMEOUT_S = 3
HALF_SENT = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # the blank line never comes


def _half_sent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(HALF_SENT)
        socks.append(sock)
    return socks


def _closed_by_server(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def _health(dash: Dashboard) -> bool:
    try:  # a new connection each time, as a monitor's probe
        return httpx.get(dash.url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_health_answers_through_a_flood_of_half_sent_requests(
    start_dashboard: Callable[..., Dashboard], queue: Queue
) -> None:
    dash = start_dashboard(
        "--http-timeout", str(HTTP_TIMEOUT_S), prefix=("prlimit", f"--nofile={NOFILE}:{NOFILE}")
    )
    started = dash.daemon.events("dashboard_started")[0]
    assert started["open_file_limit"] == NOFILE
    assert started["max_connections"] < FLOOD // 4, "the cap leaves room below the limit"
    lines_before = len(dash.daemon.output().splitlines())

    flood = _half_sent(urlsplit(dash.url).port or 0, FLOOD)
    try:
        wait_until(lambda: _health(dash), 5, "/health to answer during the flood")
        queue.drop("during_flood.log", "[INFO] API: request handled in 5 ms\n")
        wait_until(lambda: queue.files("processed") == ["during_flood.log"], 30,
                   "the file dropped during the flood to be processed")  # fmt: skip
        # the ones not evicted for newer ones never complete their head: closed at the deadline
        wait_until(lambda: all(_closed_by_server(s) for s in flood), HTTP_TIMEOUT_S + 10,
                   "the server to close every half-sent connection")  # fmt: skip
    finally:
        for sock in flood:
            sock.close()

    assert _health(dash)
    assert dash.daemon.events("connection_evicted")
    assert dash.daemon.events("connection_timed_out")
    output = dash.daemon.output()
    assert "Traceback" not in output and "Too many open files" not in output
    added = len(output.splitlines()) - lines_before
    assert added < 30, f"{added} log lines for a flood of {FLOOD} connections"


def test_a_connection_beyond_the_cap_is_refused_when_every_one_is_busy(
    start_dashboard: Callable[..., Dashboard],
) -> None:
    dash = start_dashboard("--max-connections", "2")
    streams = [httpx.stream("GET", dash.url + "/events", timeout=10) for _ in range(2)]
    try:
        for stream in streams:  # two requests in flight for as long as the streams are open
            assert stream.__enter__().status_code == 200
        r = httpx.get(dash.url + "/health", timeout=10)
        assert (r.status_code, r.text) == (503, "every dashboard connection is in use\n")
    finally:
        for stream in streams:
            stream.__exit__(None, None, None)
    wait_until(lambda: _health(dash), 10, "/health once a stream is closed")
    assert dash.daemon.events("connection_refused")
