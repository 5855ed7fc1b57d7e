"""The dashboard in a real headless Chromium (Debian's), driven by Playwright: what a
person sees, updated live without reloading."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LOG = (
    "2024-01-05 10:00:01 [INFO] API: request handled in 5 ms\n"
    "2024-01-05 10:00:02 [ERROR] DB: connection lost\n"
    "2024-01-05 10:00:03 [WARN] Cache: miss for key session:42\n"
    "2024-01-05 10:00:04 [INFO] Auth: user 7 logged in\n"
    "a line no parser understands\n"
)
TIMEOUT_MS = 30_000


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_upload_through_the_page_reaches_processed_live(
    dashboard: Dashboard, page: Any, queue: Queue
) -> None:
    expect = _expect()
    page.goto(dashboard.url + "/upload")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.evaluate("window.__noReload = true")
    page.set_input_files("#file-input", files=[
        {"name": "web_20240105.log", "mimeType": "text/plain", "buffer": LOG.encode()},
        {"name": "api_20240105.log", "mimeType": "text/plain", "buffer": LOG.encode() * 50},
    ])  # fmt: skip
    rows = page.locator("#uploads tbody tr")
    expect(rows).to_have_count(2)
    for name in ("web_20240105.log", "api_20240105.log"):
        state = rows.filter(has_text=name).locator("td[data-state]")
        expect(state).to_have_attribute("data-state", "processed", timeout=TIMEOUT_MS)
        expect(state).to_have_text("processed")
    assert page.evaluate("window.__noReload") is True  # the same page, never reloaded
    assert sorted(queue.files("processed")) == ["api_20240105.log", "web_20240105.log"]

    # drag and drop works the same way
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["[INFO] API: dropped\\n"], "drop_20240105.log"));
        const zone = document.getElementById("dropzone");
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
    }""")
    dropped = rows.filter(has_text="drop_20240105.log").locator("td[data-state]")
    expect(dropped).to_have_attribute("data-state", "processed", timeout=TIMEOUT_MS)
    # the link leads to the file's detail page
    dropped.locator("a").click()
    expect(page.locator("#file-state")).to_have_text("processed")


def test_requeue_a_failed_file_from_its_page(dashboard: Dashboard, page: Any, queue: Queue) -> None:
    expect = _expect()
    queue.drop("broken.log", b"")
    row = wait_until(lambda: dashboard.find("failed", "broken.log"), 30, "broken.log failed")
    page.goto(f"{dashboard.url}/files/{row['uid']}")
    expect(page.locator("#file-state")).to_have_text("failed")
    expect(page.get_by_text("empty file (0 bytes)").first).to_be_visible()
    (queue.dir("failed") / "broken.log").write_text("[INFO] API: fixed\n")  # an operator fixes it
    page.locator("#requeue").click()
    expect(page.get_by_role("status")).to_contain_text("requeued as unprocessed/broken.log")
    page.evaluate("window.__noReload = true")
    expect(page.locator("#file-state")).to_have_text("processed", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#requeue")).to_have_count(0)
    assert "broken.log" in queue.files("processed")


def test_a_page_that_missed_events_catches_up_when_it_connects(
    dashboard: Dashboard, page: Any, queue: Queue
) -> None:
    # what changes between a page's render and its live stream's connecting is not lost
    expect = _expect()
    queue.drop("late.log", b"")
    row = wait_until(lambda: dashboard.find("failed", "late.log"), 30, "late.log failed")
    page.route("**/events", lambda route: route.abort())  # the stream cannot connect yet
    page.goto(f"{dashboard.url}/files/{row['uid']}")
    expect(page.locator("#file-state")).to_have_text("failed")
    (queue.dir("failed") / "late.log").write_text("[INFO] API: fixed\n")
    assert dashboard.post(f"/api/files/{row['uid']}/requeue").status_code == 200
    wait_until(lambda: dashboard.find("processed", "late.log"), 30, "late.log processed")
    page.evaluate("window.__noReload = true")
    page.unroute("**/events")  # EventSource retries on its own
    expect(page.locator("#file-state")).to_have_text("processed", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__noReload") is True


def test_a_script_file_name_shows_as_text(dashboard: Dashboard, page: Any, queue: Queue) -> None:
    expect = _expect()
    name = "<script>alert(1)</script>.log"
    queue.drop(name, LOG)
    row = wait_until(lambda: dashboard.find("processed", name), 30, "the file processed")
    page.goto(dashboard.url + "/files")
    expect(page.get_by_role("link", name=name)).to_be_visible()
    page.get_by_role("link", name=name).click()
    expect(page.locator("h1.name")).to_have_text(name)
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    page.goto(f"{dashboard.url}/files/{row['uid']}")
    expect(page.locator("h1.name")).to_have_text(name)
    # the page fixture fails the test if any alert() dialog opened or a script raised
