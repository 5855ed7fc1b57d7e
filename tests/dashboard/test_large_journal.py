"""The Files page and API on a journal of 100,000 files: correct pages, in order, by keyset
cursors (timing lives in bench/bench_dashboard.py, not here)."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from daemon.schema import SCHEMA
from tests.conftest import Queue

pytestmark = pytest.mark.integration

N = 100_000
BASE = 1_700_000_000.0


def _rel(i: int) -> str:
    return f"host{i % 7}/file{i:06d}.log"


def fill_journal(queue: Queue, n: int = N) -> None:
    """n files, one every second from BASE; every 10th failed, the rest processed."""
    meta = queue.root / ".folderd"
    meta.mkdir(exist_ok=True)
    conn = sqlite3.connect(meta / "journal.sqlite3")
    conn.executescript(SCHEMA)
    rows = []
    for i in range(n):
        state = "failed" if i % 10 == 0 else "processed"
        error = (
            '{"type": "Rejected", "message": "empty file (0 bytes)"}' if state == "failed" else None
        )
        rows.append((uuid.uuid4().hex, _rel(i), f"file{i:06d}.log", state,
                     100 + i, 1, BASE + i, BASE + i, 0.01, error, "[]"))  # fmt: skip
    conn.executemany(
        "INSERT INTO files (uid, rel, original, state, size, attempts, created, updated,"
        " duration, error, outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()


def _walk(dash: Any, pages: int, **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(pages):
        page = dash.get("/api/files", params={**params, **({"before": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["files"]
        cursor = body["older"]
        if cursor is None:
            break
    return seen


def test_files_pages_over_100k_rows(start_dashboard: Any, queue: Queue) -> None:
    fill_journal(queue)
    dash = start_dashboard()

    first = dash.get("/api/files", params={"limit": 100}).json()
    assert [f["rel"] for f in first["files"][:2]] == [_rel(N - 1), _rel(N - 2)]
    assert first["newer"] is None and first["older"]

    rows = _walk(dash, 5, limit=200)
    assert len(rows) == 1000
    assert [r["size"] for r in rows] == list(range(100 + N - 1, 100 + N - 1001, -1))

    # a deep page: a cursor far down the list costs a seek, and the page is exact
    deep = dash.get("/api/files", params={"limit": 50, "before": f"{BASE + 500!r}:501"}).json()
    assert [f["size"] for f in deep["files"]] == list(range(100 + 499, 100 + 449, -1))
    newer = dash.get("/api/files", params={"limit": 50, "after": deep["newer"]}).json()
    assert [f["size"] for f in newer["files"]] == list(range(100 + 549, 100 + 499, -1))

    # the last page ends the list
    tail = dash.get("/api/files", params={"limit": 50, "before": f"{BASE + 30!r}:31"}).json()
    assert [f["size"] for f in tail["files"]] == list(range(129, 99, -1))
    assert tail["older"] is None

    failed = _walk(dash, 3, state="failed", limit=100)
    assert len(failed) == 300
    assert all(f["state"] == "failed" for f in failed)
    assert [f["size"] for f in failed[:3]] == [100 + 99990, 100 + 99980, 100 + 99970]
    assert failed[0]["error"]["message"] == "empty file (0 bytes)"

    found = dash.get("/api/files", params={"q": "file04242", "limit": 50}).json()["files"]
    assert sorted(f["rel"] for f in found) == sorted(_rel(i) for i in range(42420, 42430))
    assert dash.get("/api/files", params={"q": "50%_"}).json()["files"] == []

    html = dash.get("/files", params={"state": "failed"}).text
    assert _rel(99990) in html and "older ›" in html
    counts = dash.get("/api/status").json()["states"]
    expected = {"processed": 90_000, "failed": 10_000}
    assert counts == {"unprocessed": 0, "underprocess": 0, "missing": 0, **expected}
    assert dash.get("/api/errors", params={"limit": 5}).json()["total"] == 10_000
