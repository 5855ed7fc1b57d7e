"""A real daemon with its dashboard on a free port, an HTTP client for it, and a real
headless Chromium (Debian's) for the browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DaemonProcess, Queue

CHROMIUM = os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@dataclass
class Dashboard:
    daemon: DaemonProcess
    queue: Queue
    url: str
    http: httpx.Client

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def upload(self, name: str, data: bytes, **kw: Any) -> httpx.Response:
        return self.http.post("/api/upload", files={"file": (name, data)}, **kw)

    def file(self, uid: str) -> dict[str, Any]:
        return self.get(f"/api/files/{uid}").json()

    def find(self, state: str, rel: str) -> dict[str, Any] | None:
        """The journal row of `rel` in `state`, through the API (None until it is there)."""
        page = self.get("/api/files", params={"state": state, "q": rel, "limit": 500}).json()
        return next((f for f in page["files"] if f["rel"] == rel), None)


@pytest.fixture
def start_dashboard(
    start_daemon: Callable[..., DaemonProcess], queue: Queue
) -> Iterator[Callable[..., Dashboard]]:
    """Start the daemon with its dashboard (`--port 0`); the URL comes from its log."""
    clients: list[httpx.Client] = []

    def start(
        *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> Dashboard:
        d = start_daemon("--port", "0", *args, env=env, prefix=prefix, dashboard=True)
        url = d.wait_event("dashboard_started")["url"]
        client = httpx.Client(base_url=url, timeout=30.0)
        clients.append(client)
        return Dashboard(d, queue, url, client)

    yield start
    for c in clients:
        c.close()


@pytest.fixture
def dashboard(start_dashboard: Callable[..., Dashboard]) -> Dashboard:
    return start_dashboard()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright; skipped when absent, unless CI requires it."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("TEST_REQUIRE_BROWSER"):
            pytest.fail(message + "; TEST_REQUIRE_BROWSER is set, so this is a failure")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(chromium: Any, width: int = 1280, height: int = 900, **context: Any) -> Iterator[Any]:
    """A page in a new browser context (`context`: Playwright's options, e.g.
    color_scheme); fails if a script raised or a dialog opened on it."""
    ctx = chromium.new_context(viewport={"width": width, "height": height}, **context)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    yield pg
    ctx.close()
    assert not errors, f"the page raised or opened a dialog: {errors}"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    with open_page(chromium) as pg:
        yield pg
