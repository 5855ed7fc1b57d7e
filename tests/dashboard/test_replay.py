"""Bulk requeue from the Errors page, through real HTTP and in Chromium: the count comes
first, a count that moved requeues nothing, each requeue is journalled, and a requeued
file keeps its history and its summary, even under a `~N` name."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

BINARY = b"\x00\x01\x02 not text \xff\xfe" * 20
GOOD = "2024-01-05 10:00:01 [INFO] API: fixed by an operator\n"
TIMEOUT_MS = 30_000


def _fail(dash: Dashboard, queue: Queue, files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    for name, data in files.items():
        queue.drop(name, data)
    rows: dict[str, dict[str, Any]] = {}
    for name in files:
        rows[name] = wait_until(lambda n=name: dash.find("failed", n), 30, f"{name} failed")
    return rows


def _match(dash: Dashboard, **params: Any) -> dict[str, Any]:
    r = dash.get("/api/errors/replay", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_count_filter_confirm_and_journal(dashboard: Dashboard, queue: Queue) -> None:
    rows = _fail(dashboard, queue, {
        "e1.log": b"", "sub/e2.log": b"",  # empty: Rejected
        "bin1.dat": BINARY, "bin2.log": BINARY, "x.jsonl": BINARY,  # BinaryInput
    })  # fmt: skip
    assert _match(dashboard)["count"] == 5
    rejected = _match(dashboard, type="Rejected")
    assert rejected["count"] == 2
    assert sorted(f["rel"] for f in rejected["files"]) == ["e1.log", "sub/e2.log"]
    assert [f["rel"] for f in _match(dashboard, type="BinaryInput", name="*.log")["files"]] == [
        "bin2.log"
    ]
    assert _match(dashboard, name="sub/*")["count"] == 1
    assert _match(dashboard, route="json")["count"] == 1  # x.jsonl, by the default routes
    assert _match(dashboard, route="log", type="BinaryInput")["count"] == 2
    now = time.time()
    assert _match(dashboard, since=now + 60)["count"] == 0
    assert _match(dashboard, until=now + 60, since="2000-01-01T00:00")["count"] == 5
    bad = dashboard.get("/api/errors/replay", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]

    # a count that moved requeues nothing, and says the new one
    moved = dashboard.post("/api/errors/replay", json={"type": "Rejected", "expect": 3})
    assert moved.status_code == 409 and moved.json()["count"] == 2
    assert sorted(queue.files("failed")) == sorted(rows)
    assert dashboard.post("/api/errors/replay", json={"type": "Rejected"}).status_code == 400

    for name in ("e1.log", "sub/e2.log"):  # an operator fixes them, then replays them
        (queue.dir("failed") / name).write_text(GOOD)
    done = dashboard.post("/api/errors/replay", json={"type": "Rejected", "expect": 2})
    assert done.status_code == 200, done.text
    assert sorted(f["path"] for f in done.json()["requeued"]) == ["e1.log", "sub/e2.log"]
    assert done.json()["skipped"] == []
    for name in ("e1.log", "sub/e2.log"):
        wait_until(lambda n=name: dashboard.find("processed", n), 30, f"{name} processed")
        detail = dashboard.file(rows[name]["uid"])  # the same file, its history kept
        reasons = [(t["to_state"], t["reason"]) for t in detail["timeline"]]
        assert ("failed", "empty file (0 bytes)") in reasons
        assert ("unprocessed", "requeued in bulk (type=Rejected)") in reasons
        assert reasons[-1][0] == "processed"
        assert detail["summary"]["status"] == "processed"
    assert sorted(queue.files("failed")) == ["bin1.dat", "bin2.log", "x.jsonl"]
    assert _match(dashboard, type="Rejected")["count"] == 0


def test_the_token_is_needed_to_replay(start_dashboard: Any, queue: Queue) -> None:
    dash = start_dashboard(env={"FOLDERD_TOKEN": "s3cret-token-for-tests"})
    _fail(dash, queue, {"e.log": b""})
    assert _match(dash)["count"] == 1  # a read, like /api/errors
    body = {"expect": 1}
    assert dash.post("/api/errors/replay", json=body).status_code == 401
    assert dash.post("/errors/requeue", data={"expect": "1"}).status_code in (303, 401)
    assert queue.files("failed") == ["e.log"]
    auth = {"authorization": "Bearer s3cret-token-for-tests"}
    assert dash.post("/api/errors/replay", json=body, headers=auth).status_code == 200


def test_a_file_requeued_under_a_numbered_name_keeps_its_summary(
    start_dashboard: Any, queue: Queue, slow_config: Path
) -> None:
    dash = start_dashboard("--config", str(slow_config), "--workers", "1")
    row = _fail(dash, queue, {"a.log": b""})["a.log"]
    for i in range(3):  # one worker: one runs, one is prefetched, the third waits
        queue.drop(f"slow{i}.log", "x\n" * 400)
    busy = ["slow0.log", "slow1.log"]
    wait_until(lambda: queue.files("underprocess") == busy, 30, "the worker busy for ~8 s")
    queue.drop("a.log", GOOD)  # another a.log, waiting in unprocessed/ behind slow2.log
    r = dash.post(f"/api/files/{row['uid']}/requeue")
    assert r.status_code == 200 and r.json()["path"] == "a~1.log", r.text
    detail = dash.file(row["uid"])
    assert (detail["state"], detail["rel"]) == ("unprocessed", "a~1.log")
    assert detail["summary"]["uid"] == row["uid"]  # found by the file's identity
    assert detail["summary"]["error"]["message"] == "empty file (0 bytes)"
    assert detail["summary_path"] == "a~1.log.json"  # it went with its file
    assert not (queue.results / "a.log.json").exists()  # free for the other a.log
    page = dash.get(f"/files/{row['uid']}")
    assert "empty file (0 bytes)" in page.text and "a~1.log" in page.text


@pytest.mark.browser
def test_bulk_requeue_from_the_errors_page(
    dashboard: Dashboard, page: Any, queue: Queue, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _fail(dashboard, queue, {"r1.log": b"", "r2.log": b"", "r3.log": b"", "bin.log": BINARY})
    for name in ("r1.log", "r2.log", "r3.log"):
        (queue.dir("failed") / name).write_text(GOOD)
    page.goto(dashboard.url + "/errors")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.get_by_text("Requeue failed files in bulk").click()
    page.select_option("select[name=type]", "Rejected")
    page.locator("#replay-count").click()
    expect(page.locator("#replay-count-text")).to_have_text("3 failed file(s) match")
    expect(page.locator("#replay-match li")).to_have_count(3)
    expect(page.locator("#replay-confirm")).to_have_text("Requeue these 3 file(s)")
    out = Path(os.environ.get("TEST_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "errors_replay.png"), full_page=True)
    page.locator("#replay-confirm").click()
    expect(page.get_by_role("status")).to_have_text("requeued 3 file(s)")
    wait_until(lambda: len(queue.files("processed")) == 3, 30, "the three processed")
    assert queue.files("failed") == ["bin.log"]

    # a count that moved while the page was open: nothing requeued, the new count shown
    page.goto(dashboard.url + "/errors?match=1")
    expect(page.locator("#replay-count-text")).to_have_text("1 failed file(s) match")
    _fail(dashboard, queue, {"late.log": b""})
    page.locator("#replay-confirm").click()
    expect(page.get_by_role("status")).to_contain_text("now matches 2 file(s), not the 1")
    expect(page.locator("#replay-count-text")).to_have_text("2 failed file(s) match")
    assert sorted(queue.files("failed")) == ["bin.log", "late.log"]
