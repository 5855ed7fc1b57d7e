"""History: files processed and failed per bucket of the last hour, day and week, by route,
counted from the journal's `files_state_route` index (timing in bench/bench_history.py);
the Files page's time range."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.journal import Journal
from daemon.schema import SCHEMA
from dashboard import history, queries
from tests.conftest import Queue, wait_until

LOG = "2024-01-05 10:00:01 [INFO] API: request handled in 5 ms\n"


def old_journal(path: Path, rows: list[tuple[str, str | None, float]]) -> None:
    """A journal as an earlier version wrote it (no `route`), holding `rows` (state, route,
    updated); the route is set once Journal() has added the column."""
    conn = sqlite3.connect(path)
    conn.executescript(re.sub(r"(outputs TEXT),(.*)\n\s*route TEXT.*", r"\1 \2", SCHEMA))
    assert "route" not in {r[1] for r in conn.execute("PRAGMA table_info(files)")}
    conn.executemany(
        "INSERT INTO files (uid, rel, original, state, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
        [(f"u{i}", f"f{i}", f"f{i}", state, t, t) for i, (state, _, t) in enumerate(rows)],
    )
    conn.commit()
    conn.close()
    Journal(path).close()  # migrates: the column and the index
    conn = sqlite3.connect(path)
    conn.executemany("UPDATE files SET route = ? WHERE uid = ?",
                     [(route, f"u{i}") for i, (_, route, _) in enumerate(rows)])  # fmt: skip
    conn.commit()
    conn.close()


def test_an_older_journal_gains_the_route_and_the_index_counts_alone(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old_journal(path, [("processed", "log", 1000.0)])
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    plan = " ".join(r[3] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM files WHERE state = ? AND route IS ?"
        " AND updated >= ? AND updated < ?", ("processed", "log", 0, 1)))  # fmt: skip
    assert "COVERING INDEX files_state_route" in plan
    assert queries.finished_routes(conn, "processed") == ["log"]


def test_buckets_by_outcome_and_route_and_ended_buckets_are_kept(tmp_path: Path) -> None:
    now = 1_700_000_040.0  # a multiple of 60: a minute bucket starts there
    rows: list[tuple[str, str | None, float]] = [
        ("processed", "log", now + 5), ("processed", "log", now - 70),
        ("processed", "csv", now - 70), ("failed", None, now - 65),
        ("failed", "csv", now - 3530), ("processed", "log", now - 3700),  # before the hour
        ("unprocessed", "log", now - 5),  # not finished: not counted
    ]  # fmt: skip
    path = tmp_path / "journal.sqlite3"
    old_journal(path, rows)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    hist = history.History()
    hour = history.PERIODS["hour"]
    buckets = hist.counts(conn, 0, hour, now + 30)
    assert len(buckets) == 60 and buckets[-1][0] == now and buckets[0][0] == now - 59 * 60
    assert {start: counts for start, counts in buckets if counts} == {
        now: {("processed", "log"): 1},
        now - 120: {("processed", "log"): 1, ("processed", "csv"): 1, ("failed", None): 1},
        now - 3540: {("failed", "csv"): 1},
    }
    # an ended bucket is counted once: a row changed later does not move it
    conn.close()
    rw = sqlite3.connect(path)
    rw.execute("UPDATE files SET state = 'unprocessed' WHERE route = 'csv' AND state = 'failed'")
    rw.execute(
        "INSERT INTO files (uid, rel, original, state, created, updated, route)"
        " VALUES ('new', 'n', 'n', 'processed', ?, ?, 'log')",
        (now + 20, now + 20),
    )
    rw.commit()
    rw.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    again = dict(hist.counts(conn, 0, hour, now + 40))
    assert again[now - 3540] == {("failed", "csv"): 1}  # kept
    assert again[now] == {("processed", "log"): 2}  # the open bucket, counted again
    fresh = dict(hist.counts(conn, 1, hour, now + 40))  # a new journal generation
    assert fresh[now - 3540] == {}


def test_a_move_journalled_late_still_counts_in_the_bucket_just_ended(tmp_path: Path) -> None:
    # The daemon journals a move when its loop flushes, a moment after the move's time: a
    # bucket that ended a few seconds ago is counted again, not kept without that move.
    now = 1_700_000_040.0
    path = tmp_path / "journal.sqlite3"
    old_journal(path, [("processed", "log", now - 30)])
    hist, hour = history.History(), history.PERIODS["hour"]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert dict(hist.counts(conn, 0, hour, now + 1))[now - 60] == {("processed", "log"): 1}
    rw = sqlite3.connect(path)
    rw.execute(
        "INSERT INTO files (uid, rel, original, state, created, updated, route)"
        " VALUES ('late', 'l', 'l', 'failed', ?, ?, 'log')",
        (now - 2, now - 2),
    )
    rw.commit()
    rw.close()
    later = dict(hist.counts(conn, 0, hour, now + 3))
    assert later[now - 60] == {("processed", "log"): 1, ("failed", "log"): 1}
    conn.close()


@pytest.mark.integration
def test_history_through_the_dashboard_by_route(start_dashboard: Any, queue: Queue) -> None:
    dash = start_dashboard()
    queue.drop("web_20240105.log", LOG)
    queue.drop("api_20240105.log", LOG)
    queue.drop("table.csv", "a,b,c\n1,2,3\n")
    queue.drop("empty.log", b"")
    wait_until(lambda: len(queue.files("processed")) == 3 and queue.files("failed"), 30,
               "all done")  # fmt: skip
    day = dash.get("/api/history", params={"period": "day"}).json()
    assert day["totals"] == {"processed": 3, "failed": 1, "failure_rate": 0.25}
    assert len(day["buckets"]) == 48 and day["bucket_s"] == 1800
    assert day["routes"] == [
        {"route": "log", "processed": 2, "failed": 0, "failure_rate": 0.0},
        {"route": "csv", "processed": 1, "failed": 0, "failure_rate": 0.0},
        {"route": None, "processed": 0, "failed": 1, "failure_rate": 1.0},
    ]
    csv = dash.get("/api/history", params={"period": "week", "route": "csv"}).json()
    assert csv["totals"]["processed"] == 1 and csv["route"] == "csv"
    assert dash.get("/api/history", params={"period": "year"}).status_code == 400
    page = dash.get("/history", params={"period": "hour"})
    assert (
        page.status_code == 200
        and "By route" in page.text
        and 'aria-current="page">last hour' in page.text
    )
    assert dash.get("/history", params={"period": "x"}).status_code == 400

    # the Files page by time range: the files of the bar the history links to
    last = day["buckets"][-1]
    inside = dash.get("/api/files", params={"since": last["start"], "until": last["end"]}).json()
    assert len(inside["files"]) == 4
    before = dash.get("/api/files", params={"until": last["start"] - 1}).json()
    assert before["files"] == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(last["start"]))
    failed = dash.get("/api/files", params={"state": "failed", "since": iso}).json()
    assert [f["rel"] for f in failed["files"]] == ["empty.log"]
    assert dash.get("/api/files", params={"since": "yesterday"}).status_code == 400
    html = dash.get("/files", params={"since": iso}).text
    assert f'value="{iso}"' in html and "showing those last changed from" in html
