"""The elections recipe end to end: the generator's files dropped into a real daemon running
examples/elections/pipeline_config.json; the database holds exactly the valid rows with the
file name's metadata, each invalid row is reported with its line and a reason, the totals
view matches what the generator wrote, and a file sent again changes nothing. SQLite by
default, PostgreSQL by the same config through ELECTIONS_DB."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from examples.elections.generate import generate
from examples.elections.totals import connect, totals
from tests.conftest import ROOT, DaemonProcess, Queue, wait_until
from tests.sinks.servers import Database

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
CONFIG = str(ROOT / "examples/elections/pipeline_config.json")
DAY = date(2026, 11, 30)


def _run(queue: Queue, start_daemon: Start, tmp_path: Path, url: str) -> dict[str, Any]:
    """Generate, drop every file, wait until all are processed; the manifest."""
    samples = tmp_path / "samples"
    manifest = generate(samples, constituencies=3, rows=300, large_rows=20_000, seed=7, day=DAY)
    start_daemon("--config", CONFIG, "--skip-duplicates", "--workers", "2",
                 env={"ELECTIONS_DB": url})  # fmt: skip
    for p in sorted(samples.iterdir()):
        queue.drop(p.name, p.read_bytes())
    n = len(manifest["files"])
    wait_until(lambda: len(queue.files("processed")) == n, 120, f"{n} files processed")
    assert queue.files("failed") == []
    return manifest


def _check(queue: Queue, manifest: dict[str, Any], url: str) -> None:
    conn = connect(url)
    try:
        rows = conn.execute(
            "SELECT source, count(*), count(DISTINCT tx_hash), min(constituency),"
            " max(constituency), min(file_date), max(file_date) FROM transactions GROUP BY source"
        ).fetchall()
    finally:
        conn.close()
    got = {r[0]: r[1:] for r in rows}
    for name, want in manifest["files"].items():
        cid, ymd = name.removesuffix(".csv").split("_")[1:]
        day = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
        assert got[name] == (want["valid"], want["valid"], int(cid), int(cid), day, day), name
        report = (queue.results / f"{name}.invalid").read_text().splitlines()
        reported = [json.loads(x) for x in report]
        assert {r["line"] for r in reported} == {int(n) for n in want["invalid"]}, name
        assert all(r["reason"] for r in reported)
        assert queue.summaries()[name]["aggregates"]["ranges"]["valid"] == want["valid"]
    expected: Counter[tuple[int, str]] = Counter()
    for cid, votes in manifest["totals"].items():
        for candidate, n in votes.items():
            expected[(int(cid), candidate)] += n
    assert {(c, cand): v for c, cand, _, v in totals(url)} == dict(expected)


def test_sqlite_rows_reports_and_totals(queue: Queue, start_daemon: Start, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elections.sqlite3'}"
    manifest = _run(queue, start_daemon, tmp_path, url)
    _check(queue, manifest, url)
    kinds = {k for f in manifest["files"].values() for k in f["invalid"].values()}
    assert len(kinds) >= 8, kinds  # the samples hold nearly every kind of invalid row
    reasons = (queue.results / "constituency_101_20261130.csv.invalid").read_text()
    for words in ("is required", "is not a valid int", "outside 1..10000", "appears twice"):
        assert words in reasons

    # The same bytes sent again: skipped, nothing stored twice, totals unchanged.
    before = totals(url)
    again = queue.dir("processed") / "constituency_102_20261201.csv"
    queue.drop("resent/constituency_102_20261201.csv", again.read_bytes())
    wait_until(lambda: "resent/constituency_102_20261201.csv" in queue.summaries(), 60, "resent")
    assert queue.summaries()["resent/constituency_102_20261201.csv"]["duplicate_of"]
    assert totals(url) == before
    with sqlite3.connect(tmp_path / "elections.sqlite3") as con:
        n = con.execute("SELECT count(*) FROM transactions WHERE source LIKE 'resent/%'")
        assert n.fetchone() == (0,)


def test_postgresql_by_the_same_config(
    queue: Queue, start_daemon: Start, tmp_path: Path, postgres: Database
) -> None:
    manifest = _run(queue, start_daemon, tmp_path, postgres.url)
    _check(queue, manifest, postgres.url)
