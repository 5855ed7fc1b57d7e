"""The dashboard behind nginx with TLS, through deploy/nginx-folderd.conf as shipped.

A real daemon with a token and `--allowed-hosts folderd.test`; Debian's nginx with a
self-signed certificate for that name in front (tests/deploy/proxy.py); a client that
verifies the certificate and connects to nginx only. Pages, uploads, the live events,
/health and the login go through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DaemonProcess, Queue
from tests.deploy import proxy
from tests.deploy.shell import Log, check, wait_for

pytestmark = pytest.mark.timeout(300)

TOKEN = "proxy-test-token"
LOG = "2024-01-02T10:00:00 INFO app started\n2024-01-02T10:00:01 ERROR disk full\n"


class _Named(httpx.HTTPTransport):
    """Connects to nginx on 127.0.0.1, and speaks TLS to it as to `folderd.test` (SNI and
    the certificate's name), as a browser that resolved the name would."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions = {**request.extensions, "sni_hostname": proxy.NAME}
        return super().handle_request(request)


@dataclass
class Proxied:
    daemon: DaemonProcess
    queue: Queue
    nginx: proxy.Nginx
    cert: proxy.Certificate

    @property
    def origin(self) -> str:
        return self.nginx.url  # https://folderd.test:PORT

    def client(self, source: str = "127.0.0.1") -> httpx.Client:
        """A client of nginx's, from `source` (any 127.x address is this machine)."""
        transport = _Named(verify=self.nginx.ssl_context(self.cert), local_address=source)
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.nginx.port}", transport=transport, timeout=30,
            headers={"Host": f"{proxy.NAME}:{self.nginx.port}"},
        )  # fmt: skip

    @property
    def logs(self) -> tuple[Log, ...]:
        return (
            Log("the daemon's log", self.daemon.output),
            self.nginx.error_log,
            self.nginx.access_log,
        )


@pytest.fixture(scope="module")
def cert(work: Path) -> proxy.Certificate:
    return proxy.self_signed(work / "proxy" / "tls")


@contextlib.contextmanager
def _proxied(base: Path, cert: proxy.Certificate, trusted: bool) -> Iterator[Proxied]:
    """A daemon with a token and `--allowed-hosts folderd.test` (and, `trusted`, nginx's
    address in `--trusted-proxies`, as the manual says), nginx in front; both stopped after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    env.update(FOLDERD_TOKEN=TOKEN, FOLDERD_ALLOWED_HOSTS=proxy.NAME)
    if trusted:
        env["FOLDERD_TRUSTED_PROXIES"] = "127.0.0.1"
    queue = Queue(base)
    daemon = DaemonProcess(queue, base / "daemon.log", ["--port", "0", "--settle", "0.2"], env)
    nginx = None
    try:
        url = daemon.wait_event("dashboard_started", 60)["url"]
        nginx = proxy.Nginx(base / "nginx", url.removeprefix("http://"), cert)
        nginx.start()
        yield Proxied(daemon, queue, nginx, cert)
    finally:
        if nginx is not None:
            nginx.stop()
        daemon.close()


@pytest.fixture(scope="module")
def proxied(work: Path, cert: proxy.Certificate) -> Iterator[Proxied]:
    """One for the checks that do not change how it counts clients."""
    with _proxied(work / "proxy" / "shared", cert, trusted=True) as p:
        yield p


def test_pages_assets_and_health_through_tls(proxied: Proxied) -> None:
    with proxied.client() as http:
        page = http.get("/")
        check(page.status_code == 200, f"/: {page.status_code} {page.text[:300]}", *proxied.logs)
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
        assert assets, page.text[:500]
        for path in [*assets, "/files", "/pipeline", "/upload"]:
            r = http.get(path)
            check(r.status_code == 200, f"{path}: {r.status_code}", *proxied.logs)
        health = http.get("/health")
        check(health.status_code == 200, f"/health: {health.text}", *proxied.logs)
        assert health.json()["status"] == "healthy"


def test_a_large_upload_goes_through_and_is_processed(proxied: Proxied) -> None:
    data = LOG.encode() * 300_000  # ~24 MB: nginx's default limit is 1 MB
    auth = {"Authorization": f"Bearer {TOKEN}", "Origin": proxied.origin}
    with proxied.client() as http:
        r = http.post("/api/upload", files={"file": ("big.log", data)}, headers=auth)
        check(r.status_code == 201, f"upload: {r.status_code} {r.text}", *proxied.logs)
        wait_for(lambda: (proxied.queue.dir("processed") / "big.log").exists(), 60,
                 "big.log processed", *proxied.logs)  # fmt: skip
        assert (proxied.queue.dir("processed") / "big.log").read_bytes() == data
        # the token and the same-origin rule still hold through the proxy
        no_token = http.post("/api/upload", files={"file": ("x.log", b"x\n")},
                             headers={"Origin": proxied.origin})  # fmt: skip
        assert no_token.status_code == 401
        elsewhere = {**auth, "Origin": "https://elsewhere.test"}
        cross = http.post("/api/upload", files={"file": ("x.log", b"x\n")}, headers=elsewhere)
        assert cross.status_code == 403


def test_live_events_come_through_as_they_happen(proxied: Proxied) -> None:
    seen: list[dict[str, Any]] = []
    with proxied.client() as http, http.stream("GET", "/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        for line in lines:  # the status comes first: the stream is open end to end
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                break
        proxied.queue.drop("live.log", LOG)
        deadline = time.monotonic() + 30
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                # an earlier test's file may finish while this stream is open: wait for ours
                if seen[-1].get("kind") == "file_processed" and seen[-1].get("path") == "live.log":
                    break
            check(time.monotonic() < deadline, f"no file_processed yet: {seen}", *proxied.logs)
    assert seen[0]["kind"] == "status"
    assert seen[-1] == {**seen[-1], "kind": "file_processed", "path": "live.log"}


def test_login_through_https_sets_a_secure_cookie(proxied: Proxied) -> None:
    with proxied.client() as http:
        r = http.post("/login", data={"token": TOKEN, "next": "/"},
                      headers={"Origin": proxied.origin})  # fmt: skip
        check(r.status_code == 303, f"login: {r.status_code} {r.text[:300]}", *proxied.logs)
        cookie = r.headers["set-cookie"]
        # X-Forwarded-Proto told it the browser is on https: the cookie is never sent in clear
        assert "Secure" in cookie and "HttpOnly" in cookie, cookie


def test_a_name_not_in_allowed_hosts_is_refused(proxied: Proxied) -> None:
    with proxied.client() as http:
        r = http.get("/health", headers={"Host": f"other.test:{proxied.nginx.port}"})
    assert r.status_code == 400, r.text
    assert "Host" in r.text


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "not trusted"])
def test_the_login_throttle_sees_the_client_only_through_a_trusted_proxy(
    work: Path, cert: proxy.Certificate, trusted: bool
) -> None:
    """Two clients (127.0.0.2 and 127.0.0.3) behind nginx (which connects from 127.0.0.1).
    After the first one's wrong tokens, the second is throttled too only when the daemon
    counts the proxy's address: when the proxy is not trusted."""
    base = work / "proxy" / ("trusted" if trusted else "untrusted")
    upload = {"file": ("x.log", b"x\n")}
    with _proxied(base, cert, trusted) as p:
        wrong = {"Authorization": "Bearer wrong", "Origin": p.origin}
        with p.client("127.0.0.2") as first, p.client("127.0.0.3") as second:
            assert first.post("/api/upload", files=upload, headers=wrong).status_code == 401
            time.sleep(1.1)  # out of its first back-off (1 s): the next wrong one counts
            assert first.post("/api/upload", files=upload, headers=wrong).status_code == 401
            # the first client now waits 2 s; the second asks at once
            theirs = second.post("/api/upload", files=upload, headers=wrong).status_code
        check(theirs == (401 if trusted else 429), f"the second client got {theirs}", *p.logs)
