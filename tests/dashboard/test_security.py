"""What the dashboard refuses, over real HTTP to a real daemon: foreign Host headers (DNS
rebinding), wrong tokens in a row, stale sessions, and parameters that cannot be answered."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

LOG = "[INFO] API: request handled in 5 ms\n[ERROR] DB: connection lost\n"

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
    # one line for the first refusal of the interval; the rest are counted (dashboard.digest)
    (refused,) = [e for e in dashboard.daemon.events("request_refused") if e["status"] == 400]
    assert {"host": "evil.example", "path": "/health"}.items() <= refused.items()


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


ODD_URLS = [
    "/files/%00", "/api/files/%00", "/files/%ff", "/api/files/a%0Ab", "/files/x?notice=%00",
    "/download/watch/processed/a%00b", "/download/results/%00", "/download/watch/%00/x",
    "/download/%00/x", "/download/watch/processed/%ff", "/download/results/a%0D%0Ab",
    "/api/files?state=%00", "/api/files?state=%ff", "/files?state=%00", "/api/files?q=%00",
    "/files?q=x%00", "/api/files?before=%00", "/api/files?before=%ff",
    "/api/files?before=1:99999999999999999999999", "/api/files?after=1:-99999999999999999999999",
    "/api/files?before=nan:1", "/api/files?after=inf:1", "/files?before=1e999:1",
    "/api/errors?before=1:99999999999999999999999", "/errors?before=%ff", "/api/files?limit=%00",
    "/api/files?limit=" + "9" * 5000, "/login?next=%00", "/pipeline?fragment=%00",
]  # fmt: skip


def test_odd_parameters_are_answers_not_tracebacks(dashboard: Dashboard) -> None:
    for url in ODD_URLS:
        assert dashboard.get(url).status_code in (400, 404), url
    assert dashboard.post("/api/files/%00/requeue").status_code in (400, 404)
    for target in (b"/files/\xff", b"/api/files?q=\xff", b"/download/watch/processed/\xc3\xa9"):
        assert _raw_get(dashboard, target).startswith(b"HTTP/1.1 400 "), target
    assert dashboard.get("/health").status_code == 200
    assert "Traceback" not in dashboard.daemon.output()


def _raw_get(dash: Dashboard, target: bytes) -> bytes:
    """A request line with bytes no client library would send unencoded."""
    with socket.create_connection(("127.0.0.1", _port(dash)), timeout=10) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        return sock.makefile("rb").read()


def test_a_name_with_newlines_downloads(dashboard: Dashboard, queue: Queue) -> None:
    name = 'two\nlines\r "quoted" é.log'
    queue.drop(name, LOG)
    row = wait_until(lambda: dashboard.find("processed", name), 30, "the odd name processed")
    detail = dashboard.file(row["uid"])
    r = dashboard.get("/download/watch/" + quote(detail["input_path"]))
    assert r.status_code == 200 and r.content == LOG.encode()
    assert r.headers["content-disposition"] == (
        'attachment; filename="two_lines_ _quoted_ _.log"; '
        "filename*=UTF-8''two%0Alines%0D%20%22quoted%22%20%C3%A9.log"
    )
    summary = dashboard.get("/download/results/" + quote(detail["summary_path"]))
    assert summary.status_code == 200 and summary.json()["source"] == name


TOKEN = {"FOLDERD_TOKEN": "s3cret"}


@pytest.mark.serial  # a request slower than the 1 s window under load gets 401, not 429
def test_wrong_tokens_in_a_row_are_throttled(start_dashboard: Callable[..., Dashboard]) -> None:
    dash = start_dashboard(env=TOKEN)
    assert dash.post("/login", data={"token": "wrong"}).status_code == 401
    for _ in range(19):
        r = dash.post("/login", data={"token": "wrong"})
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
    assert "Too many wrong tokens: try again in 1 s." in r.text
    # while the client waits, not even the right token is looked at, on the form or as Bearer
    assert dash.post("/login", data={"token": "s3cret"}).status_code == 429
    bearer = {"authorization": "Bearer s3cret"}
    assert dash.upload("a.log", b"[INFO] API: x\n", headers=bearer).status_code == 429

    def wrong_counted() -> bool:
        return dash.post("/login", data={"token": "wrong"}).status_code != 429

    wait_until(wrong_counted, 10, "the first wait to end")  # a second wrong token, counted
    r = dash.post("/login", data={"token": "s3cret"})
    assert (r.status_code, r.headers["retry-after"]) == (429, "2"), "the wait doubled"
    wait_until(lambda: dash.post("/login", data={"token": "s3cret"}).status_code == 303, 10,
               "the right token to be accepted after the wait")  # fmt: skip
    assert dash.upload("a.log", b"[INFO] API: x\n", headers=bearer).status_code == 201
    refused = dash.daemon.events("token_refused")
    assert [(e["failures"], e["wait_s"]) for e in refused] == [(1, 1.0), (2, 2.0)]


def test_sessions_end_at_logout_and_at_restart(
    start_dashboard: Callable[..., Dashboard], queue: Queue
) -> None:
    dash = start_dashboard(env=TOKEN)

    def log_in() -> str:
        r = dash.post("/login", data={"token": "s3cret"})
        assert r.status_code == 303
        assert "max-age=43200" in r.headers["set-cookie"].lower()
        return r.cookies["folderd_session"]

    def authorised(cookie: str) -> bool:
        r = httpx.post(dash.url + "/api/cancel", json={"path": "nope.log"},
                       cookies={"folderd_session": cookie})  # fmt: skip
        assert r.status_code in (401, 404), r.text  # 404: allowed in, but nothing to cancel
        return r.status_code == 404

    cookie = log_in()
    assert authorised(cookie)
    assert dash.post("/logout").status_code == 303  # with the cookie
    assert not authorised(cookie), "a copy of the cookie is worth nothing after logout"
    assert not authorised(log_in() + "0")
    cookie = log_in()
    assert authorised(cookie)

    dash.daemon.signal(signal.SIGTERM)
    assert dash.daemon.wait_exit() == 0
    dash = start_dashboard(env=TOKEN)
    assert not authorised(cookie), "a cookie from before the restart"
    assert authorised(log_in())


def _guess(dash: Dashboard, forwarded_for: str, token: str = "wrong", **headers: str) -> int:
    headers = {"authorization": f"Bearer {token}", "x-forwarded-for": forwarded_for, **headers}
    return dash.upload("a.log", LOG.encode(), headers=headers).status_code


def test_forwarded_for_from_a_peer_not_named_a_proxy_is_ignored(
    start_dashboard: Callable[..., Dashboard],
) -> None:
    dash = start_dashboard(env=TOKEN)
    codes = [_guess(dash, f"198.51.100.{i}") for i in range(30)]
    # one wrong token counted, then the real peer waits (the waits double: 1, 2, 4 s, so a
    # third 401 would need the 30 requests to take over 3 s)
    assert codes[0] == 401 and codes.count(401) <= 2 and codes.count(429) >= 28, codes
    assert {e["client"] for e in dash.daemon.events("token_refused")} == {"127.0.0.1"}
    # X-Forwarded-Proto is not believed either: the cookie is not marked Secure
    wait_until(lambda: _guess(dash, "x", "s3cret") == 201, 10, "the wait to end")
    r = dash.post("/login", data={"token": "s3cret"}, headers={"x-forwarded-proto": "https"})
    assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()


def test_a_trusted_proxy_names_the_client_the_throttle_counts(
    start_dashboard: Callable[..., Dashboard],
) -> None:
    dash = start_dashboard("--trusted-proxies", "127.0.0.0/8,::1", env=TOKEN)
    assert dash.daemon.events("dashboard_started")[0]["trusted_proxies"] == [
        "127.0.0.0/8", "::1/128"
    ]  # fmt: skip
    assert _guess(dash, "198.51.100.1") == 401
    assert _guess(dash, "198.51.100.1") == 429
    assert _guess(dash, "198.51.100.2") == 401, "another client behind the proxy: its own count"
    # A client that sends its own X-Forwarded-For gets the proxy's entry appended: only the
    # rightmost address no trusted proxy gave is the client's.
    assert _guess(dash, "203.0.113.50, 198.51.100.1") == 429
    assert _guess(dash, "203.0.113.51, 198.51.100.2, 127.0.0.9") == 429
    refused = [e["client"] for e in dash.daemon.events("token_refused")]
    assert refused == ["198.51.100.1", "198.51.100.2"]
    # the proxy says the client used https: the session cookie is Secure
    forwarded = {"x-forwarded-for": "198.51.100.3", "x-forwarded-proto": "https"}
    r = dash.post("/login", data={"token": "s3cret"}, headers=forwarded)
    assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


def test_an_unprotected_dashboard_off_loopback_is_refused(
    start_daemon: Callable[..., Any], queue: Queue
) -> None:
    d = start_daemon("--host", "0.0.0.0", "--port", "0", wait=False, dashboard=True)
    assert d.wait_exit(60) == 2
    out = d.output()
    assert "folderd: error: --host: the dashboard would listen on '0.0.0.0'" in out, out
    assert "set FOLDERD_TOKEN" in out and "--allow-no-token" in out
    assert not (queue.root / ".folderd").exists(), "refused before the daemon started"


@pytest.mark.parametrize(
    ("args", "env", "warned"),
    [
        (("--allow-no-token",), {}, True),
        ((), {"FOLDERD_ALLOW_NO_TOKEN": "1"}, True),
        ((), TOKEN, False),
    ],
)
def test_a_token_or_the_explicit_opt_out_serves_on_every_address(
    start_dashboard: Callable[..., Dashboard],
    args: tuple[str, ...],
    env: dict[str, str],
    warned: bool,
) -> None:
    dash = start_dashboard("--host", "0.0.0.0", *args, env=env)
    port = _port(dash)
    r = httpx.get(f"http://127.0.0.1:{port}/health", headers={"host": f"localhost:{port}"})
    assert r.status_code == 200, r.text
    assert bool(dash.daemon.events("dashboard_unprotected")) is warned
