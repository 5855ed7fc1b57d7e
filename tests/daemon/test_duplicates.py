"""--skip-duplicates through a real daemon: a copy of an input already processed goes
straight to processed/ naming the first (its rows are not delivered again, its pipeline not
run); other bytes of the same size are processed; the journal rebuilt from the summaries
still knows the first; without the flag a copy is processed like any file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Queue, sha256_of, wait_until

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
LINES = "".join(f"line {i}\n" for i in range(200))


def _config(tmp_path: Path) -> tuple[str, Path]:
    """Every line to a result file (`end`) and to a SQLite table (`rows`)."""
    db = tmp_path / "rows.sqlite3"
    raw = {
        "routes": [{"start": "in"}],
        "nodes": [{"name": "both", "tag": "in", "use": "pass", "to": ["end", "rows"]}],
        "outputs": {"end": {}, "rows": {"sink": {"type": "sql", "url": f"sqlite:///{db}",
                                                 "table": "records"}}},
    }  # fmt: skip
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(raw))
    return str(path), db


def _rows_by_source(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT source, count(*) FROM records GROUP BY source"))


def _processed(queue: Queue, n: int) -> None:
    wait_until(lambda: len(queue.files("processed")) == n, 60, f"{n} files in processed/")


def test_a_copy_is_not_run_again_and_points_to_the_first_results(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    cfg, db = _config(tmp_path)
    d = start_daemon("--config", cfg, "--skip-duplicates")
    queue.drop("first.log", LINES)
    _processed(queue, 1)
    first = queue.summaries()["first.log"]
    queue.drop("sub/copy.log", LINES)  # same bytes, another name and folder
    queue.drop("twin.log", LINES.replace("line 7\n", "line 8\n"))  # same size, other bytes
    _processed(queue, 3)

    s = queue.summaries()
    copy = s["sub/copy.log"]
    assert copy["status"] == "processed"
    assert copy["duplicate_of"] == first["uid"]
    assert copy["first_results"] == {"source": "first.log", "summary": "first.log.json",
                                     "output_files": ["first.log.out"]}  # fmt: skip
    assert copy["sha256"] == first["sha256"] == sha256_of(queue.dir("processed") / "sub/copy.log")
    assert copy["output_files"] == [] and "lines_in" not in copy and "deliveries" not in copy
    assert not (queue.results / "sub/copy.log.out").exists()
    assert (queue.results / "first.log.out").read_text() == LINES
    assert s["twin.log"].get("duplicate_of") is None and s["twin.log"]["lines_in"] == 200
    assert _rows_by_source(db) == {"first.log": 200, "twin.log": 200}  # nothing re-delivered
    ev = d.wait_event("file_duplicate", path="sub/copy.log")
    assert ev["duplicate_of"] == first["uid"] and ev["first"] == "first.log"

    queue.drop("third.log", LINES)  # a copy of a copy: still the first is named
    _processed(queue, 4)
    assert queue.summaries()["third.log"]["duplicate_of"] == first["uid"]


def test_after_the_journal_is_rebuilt_the_first_is_still_known(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    cfg, db = _config(tmp_path)
    d = start_daemon("--config", cfg, "--skip-duplicates")
    queue.drop("first.log", LINES)
    _processed(queue, 1)
    d.signal(15)
    assert d.wait_exit() == 0
    journal = queue.root / ".folderd" / "journal.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        journal.with_name(journal.name + suffix).unlink(missing_ok=True)

    d2 = start_daemon("--config", cfg, "--skip-duplicates")
    assert d2.wait_event("journal_rebuilt")["files"] == 1
    queue.drop("again.log", LINES)
    _processed(queue, 2)
    assert queue.summaries()["again.log"]["duplicate_of"] == queue.summaries()["first.log"]["uid"]
    assert _rows_by_source(db) == {"first.log": 200}


def test_without_the_flag_a_copy_is_processed_like_any_file(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    cfg, db = _config(tmp_path)
    start_daemon("--config", cfg)
    queue.drop("first.log", LINES)
    _processed(queue, 1)
    queue.drop("copy.log", LINES)
    _processed(queue, 2)
    copy = queue.summaries()["copy.log"]
    assert "duplicate_of" not in copy and copy["lines_in"] == 200
    assert _rows_by_source(db) == {"first.log": 200, "copy.log": 200}
