"""Reprocessing a source's processed file, through a real daemon: the file (read in place,
never queued) runs again under the config in use now, its results and its SQL rows are
replaced, its row in the sources' journal stays right (done, one more run, the same
version of the file, no further run on the next rescans), and nothing else is touched; a
job counting a version that runs again counts it once."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.canonical import digest
from tests.conftest import Queue, sha256_of, wait_until
from tests.daemon.sources_helpers import (
    entries,
    sources_config,
    summary,
    tree,
    wait_rescans,
    wait_version,
)
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration


def _config(path: Path, src: Path, db: Path, case: str) -> str:
    """Every file of the source `s` through `case` (upper or lower) to `end` and to a SQL
    table; its digest."""
    raw: dict[str, Any] = {
        "routes": [{"start": "in"}],
        "nodes": [
            {"name": case, "tag": "in", "use": case, "to": "cased"},
            {"name": "copy", "tag": "cased", "use": "pass", "to": ["end", "rows"]},
        ],
        "outputs": {
            "end": {},
            "rows": {"sink": {"type": "sql", "url": f"sqlite:///{db}", "table": "lines"}},
        },
        "sources": [{"name": "s", "path": str(src), "rescan_s": 1}],
    }
    path.write_text(json.dumps(raw))
    return digest(raw)


def _rows(db: Path, uid: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute('SELECT "record" FROM lines WHERE uid = ? ORDER BY "line"', (uid,))
        return [r[0] for r in rows]


def test_a_sources_processed_file_is_reprocessed_in_place(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    src, cfg, db = tmp_path / "src", tmp_path / "c.json", tmp_path / "rows.sqlite3"
    src.mkdir()
    (src / "a.log").write_text("Alpha One\nAlpha Two\n")
    (src / "b.log").write_text("Beta\n")
    digest_a = _config(cfg, src, db, "upper")
    dash = start_dashboard("--config", str(cfg))
    a1 = wait_version(queue, "s", "a.log", 1)
    b1 = wait_version(queue, "s", "b.log", 1)
    assert _rows(db, a1["uid"]) == ['"ALPHA ONE"', '"ALPHA TWO"']
    b_before = ((queue.results / "sources/s/b.log.json").read_bytes(), _rows(db, b1["uid"]))
    before = tree(src)

    digest_b = _config(cfg, src, db, "lower")
    dash.daemon.signal(signal.SIGHUP)
    dash.daemon.wait_event("config_reloaded")
    assert (a1["provenance"]["config"]["sha256"], b1["provenance"]["config"]["sha256"]) == (
        digest_a, digest_a), "a source's summary names no config"  # fmt: skip
    flt = {"config": digest_a[:8], "name": "sources/s/a.*"}  # as the Reprocess page's
    match = dash.get("/api/reprocess", params=flt).json()
    assert match["count"] == 1 and [f["rel"] for f in match["files"]] == ["sources/s/a.log"]
    r = dash.post("/api/reprocess", json={**flt, "expect": 1})
    assert r.status_code == 200, r.text
    assert r.json()["skipped"] == [], "a source's processed file was refused"
    assert r.json()["reprocessed"] == [{"uid": a1["uid"], "path": "a.log"}]

    a2 = wait_version(queue, "s", "a.log", 2)  # a second run of the same version
    assert a2["uid"] == a1["uid"] and a2["status"] == "processed"
    assert a2["provenance"]["config"]["sha256"] == digest_b
    assert a2["sha256"] == sha256_of(src / "a.log")
    assert {k: v for k, v in a2["origin"]["version"].items() if k != "number"} == {
        k: v for k, v in a1["origin"]["version"].items() if k != "number"
    }
    assert (queue.results / "sources/s/a.log.out").read_text() == "alpha one\nalpha two\n"
    assert _rows(db, a1["uid"]) == ['"alpha one"', '"alpha two"']  # replaced, not added
    wait_until(lambda: entries(queue, "s").get("a.log") == ("done", 2), 10, "a.log done")

    detail = dash.file(a1["uid"])
    runs = [t for t in detail["timeline"] if t["to_state"] == "processed"]
    assert [t["config_sha256"] for t in runs] == [digest_a, digest_b]
    back = [t for t in detail["timeline"] if t["from_state"] == "processed"]
    assert len(back) == 1 and back[0]["reason"].startswith("reprocess (")

    wait_rescans(dash.daemon)  # the file has not changed: nothing runs again
    assert entries(queue, "s") == {"a.log": ("done", 2), "b.log": ("done", 1)}
    assert len(dash.daemon.events("source_version_processed")) == 3
    assert summary(queue, "s", "a.log") == a2
    b_after = ((queue.results / "sources/s/b.log.json").read_bytes(), _rows(db, b1["uid"]))
    assert b_after == b_before, "a file nobody reprocessed was touched"
    assert tree(src) == before, "folderd wrote in the source"
    assert dash.get("/api/reprocess", params=flt).json()["count"] == 0  # run under B now


SLOW = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}


def test_a_version_requeued_while_its_job_runs_is_counted_once(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    folder = tmp_path / "roots" / "desk"
    folder.mkdir(parents=True)
    (folder / "bad.log").write_bytes(b"\xff not utf-8\n")
    (folder / "slow.log").write_text("line\n" * 1500)  # 15 s: the job runs meanwhile
    cfg = sources_config(tmp_path / "c.json", [], [SLOW])
    dash = start_dashboard("--config", str(cfg), "--source-roots", str(tmp_path / "roots"),
                           "--workers", "2")  # fmt: skip
    r = dash.post("/api/sources", json={"path": str(folder)})
    assert r.status_code == 201, r.text
    job, source = r.json()["id"], r.json()["source"]

    def state() -> dict[str, Any]:
        return dash.get(f"/api/sources/jobs/{job}").json()

    wait_until(lambda: state()["failed_files"] == 1, 60, "bad.log failed")
    bad = summary(queue, source, "bad.log")
    assert bad is not None
    r = dash.post(f"/api/files/{bad['uid']}/requeue")
    assert r.status_code == 200, r.text
    assert state()["state"] == "running", "the job ended before the requeue: nothing shown"
    wait_until(lambda: entries(queue, source).get("bad.log") == ("failed", 2), 30, "run again")
    done = wait_until(lambda: (j := state())["state"] == "done" and j, 60, "the job's end")
    assert (done["total_files"], done["done_files"], done["failed_files"]) == (2, 1, 1)
