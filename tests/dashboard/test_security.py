"""What the dashboard refuses, over real HTTP to a real daemon: foreign Host headers (DNS
rebinding), wrong tokens in a row, stale sessions, and parameters that cannot be answered."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.conftest import Queue
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration


def _port(dash: Dashboard) -> int:
    port = urlsplit(dash.url).port
    assert port is not None
    return port


def test_only_allowed_hosts_are_answered(dashboard: Dashboard, queue: Queue) -> None:
    port = _port(dashboard)
    for host in ("localhost", "LOCALHOST", "localhost.", "127.0.0.1", "[::1]", "[0:0::1]"):
        for shown in (host, f"{host}:{port}"):
            r = dashboard.get("/api/status", headers={"host": shown})
            assert r.status_code == 200, shown
    for host in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "::1",
                 "[::1", "localhost:80:80", "localhost:http", ""):  # fmt: skip
        for path in ("/health", "/api/status", "/", "/static/live.js", "/events"):
            r = dashboard.get(path, headers={"host": host})
            assert r.status_code == 400, (host, path)
            assert "--allowed-hosts" in r.json()["error"]

    # DNS rebinding: the attacker's page is same-origin with itself, so Origin passes
    rebound = {"host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"}
    assert dashboard.upload("x.log", b"[INFO] API: x\n", headers=rebound).status_code == 400
    assert dashboard.post("/api/cancel", json={"path": "x.log"}, headers=rebound).status_code == 400
    assert queue.files("unprocessed") == []
    refused = dashboard.daemon.events("request_refused")
    assert {"status": 400, "host": f"evil.example:{port}"}.items() <= refused[-1].items()


def test_allowed_hosts_replace_the_names_but_keep_the_bind_address(
    start_dashboard: Callable[..., Dashboard],
) -> None:
    dash = start_dashboard("--allowed-hosts", "Dash.Example")
    assert dash.get("/health", headers={"host": "dash.example:8000"}).status_code == 200
    assert dash.get("/health", headers={"host": "127.0.0.1"}).status_code == 200  # --host
    assert dash.get("/health", headers={"host": "localhost"}).status_code == 400


def test_a_star_allows_any_host(start_dashboard: Callable[..., Dashboard]) -> None:
    dash = start_dashboard(env={"FOLDERD_ALLOWED_HOSTS": "*"})
    assert dash.get("/health", headers={"host": "anything.example"}).status_code == 200
