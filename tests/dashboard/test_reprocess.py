"""Provenance and reprocess, through a real daemon: every summary names the config that
produced it, the journal indexes files by its digest, and after a config change and a
reload (SIGHUP) the files a filter picks run again under the new config, each keeping its
uid, its results and deliveries replaced, its timeline showing both runs, while no other
file is touched."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from config.canonical import digest
from tests.conftest import ROOT, Queue, sha256_of, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration


def _config(path: Path, db: Path, *, lower: bool) -> str:
    """Config A (`lower=False`): lines upper-cased to `end` and to a SQL table, copied to
    `extra`; config B: lower-cased, no `extra`. Returns its digest."""
    case = "lower" if lower else "upper"
    to = ["case"] if lower else ["case", "extra"]
    raw: dict[str, Any] = {
        "version": 1,
        "description": f"test config, {case} case",
        "routes": [{"glob": "*.txt", "start": "in"}],
        "nodes": [
            {"name": "fan", "tag": "in", "use": "pass", "to": to},
            {"name": case, "tag": "case", "use": case, "to": "cased"},
            {"name": "copy", "tag": "cased", "use": "pass", "to": ["end", "rows"]},
        ],
        "outputs": {
            "end": {},
            "rows": {"sink": {"type": "sql", "url": f"sqlite:///{db}", "table": "lines"}},
            **({} if lower else {"extra": {}}),
        },
    }
    path.write_text(json.dumps(raw, indent=2))
    return digest(raw)


def _processed(dash: Dashboard, names: list[str]) -> dict[str, dict[str, Any]]:
    return {
        n: wait_until(lambda n=n: dash.find("processed", n), 30, f"{n} processed") for n in names
    }


def _cli(dash: Dashboard, *args: str) -> subprocess.CompletedProcess[str]:
    port = dash.url.rsplit(":", 1)[1].rstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--port", port, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _untouched(queue: Queue, name: str) -> tuple[Any, ...]:
    """What must not change for a file nobody reprocessed: its input's inode and mtime,
    its summary's bytes, its outputs' mtimes."""
    st = os.stat(queue.dir("processed") / name)
    outs = sorted((p.name, p.stat().st_mtime_ns) for p in queue.results.glob(f"{name}*"))
    return st.st_ino, st.st_mtime_ns, (queue.results / f"{name}.json").read_bytes(), outs


def _rows(db: Path, uid: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute('SELECT "record" FROM lines WHERE uid = ? ORDER BY "line"', (uid,))
        return [r[0] for r in rows]


def test_reprocess_after_reload(start_dashboard: Any, queue: Queue, tmp_path: Path) -> None:
    config, db = tmp_path / "pipeline.json", tmp_path / "rows.sqlite3"
    digest_a = _config(config, db, lower=False)
    dash = start_dashboard("--config", str(config))

    old = ["old1.txt", "old2.txt"]
    for name in old:
        queue.drop(name, f"Old {name}\nSecond Line\n")
    _processed(dash, old)
    cutoff = time.time()
    wait_until(lambda: time.time() > cutoff + 0.05, 5, "the clock past the cutoff")
    new = ["new1.txt", "new2.txt", "sub/new3.txt"]
    for name in new:
        queue.drop(name, f"New {name}\nMixed Case\n")
    first = _processed(dash, new)

    summaries = queue.summaries()
    for name in old + new:
        prov = summaries[name]["provenance"]
        assert prov["config"] == {
            "path": str(config.resolve()),
            "sha256": digest_a,
            "version": 1,
            "description": "test config, upper case",
        }
        assert prov["folderd"] and prov["host"] and prov["instance"] is None
        assert prov["route"] == {"index": 0, "start": "in", "reader": "text",
                                 "describe": "glob *.txt -> in (text, utf-8/strict)"}  # fmt: skip
    assert (queue.results / "new1.txt.extra").exists()
    assert _rows(db, first["new1.txt"]["uid"]) == ['"NEW NEW1.TXT"', '"MIXED CASE"']
    before = {name: _untouched(queue, name) for name in old}

    digest_b = _config(config, db, lower=True)
    dash.daemon.signal(signal.SIGHUP)
    dash.daemon.wait_event("config_reloaded")

    # the count first (from the command line, as a script would), nothing moved yet
    count = _cli(dash, "--reprocess", f"since={cutoff!r} state=processed")
    assert count.returncode == 0, count.stderr
    match = json.loads(count.stdout)
    assert match["count"] == 3 and sorted(f["rel"] for f in match["files"]) == sorted(new)
    assert queue.files("processed") == sorted(old + new)

    # a count that moved does nothing (409), as the Errors page's replay
    stale = dash.post("/api/reprocess", json={"since": cutoff, "expect": 2})
    assert stale.status_code == 409 and stale.json()["count"] == 3
    assert queue.files("processed") == sorted(old + new)

    done = _cli(dash, "--reprocess", f"since={cutoff!r}", "--yes")
    assert done.returncode == 0, done.stderr
    assert sorted(f["path"] for f in json.loads(done.stdout)["reprocessed"]) == sorted(new)

    def rerun(name: str) -> dict[str, Any] | None:
        s = queue.summaries().get(name)
        return s if s and s["provenance"]["config"]["sha256"] == digest_b else None

    for name in new:
        wait_until(lambda n=name: rerun(n) and dash.find("processed", n), 30, f"{name} rerun")
    summaries = queue.summaries()
    for name in new:
        s = summaries[name]
        assert s["uid"] == first[name]["uid"] and s["status"] == "processed"
        assert s["sha256"] == sha256_of(queue.dir("processed") / name)
        assert s["output_files"] == [f"{name}.out"]  # `extra` is not config B's
        assert not (queue.results / f"{name}.extra").exists()
        assert (queue.results / f"{name}.out").read_text() == f"new {name}\nmixed case\n"
        assert _rows(db, s["uid"]) == [f'"new {name}"', '"mixed case"']  # replaced, not added
        detail = dash.file(s["uid"])
        assert detail["config_sha256"] == digest_b
        runs = [t for t in detail["timeline"] if t["to_state"] == "processed"]
        assert [t["config_sha256"] for t in runs] == [digest_a, digest_b]
        back = [t for t in detail["timeline"] if t["from_state"] == "processed"]
        assert len(back) == 1 and back[0]["to_state"] == "unprocessed"
        assert back[0]["reason"].startswith("reprocess (") and "since=" in back[0]["reason"]
    for name in old:  # no other file was touched
        assert _untouched(queue, name) == before[name]
        assert summaries[name]["provenance"]["config"]["sha256"] == digest_a
    assert queue.files("unprocessed") == [] and queue.files("failed") == []
    assert len([p for p in queue.results.rglob("*.json") if ".folderd-tmp" not in p.parts]) == 5

    # the journal indexes files by digest: the Files page filters by it
    by_b = dash.get("/api/files", params={"config": digest_b[:8]}).json()["files"]
    assert sorted(f["rel"] for f in by_b) == sorted(new)
    by_a = dash.get("/api/files", params={"config": digest_a, "state": "processed"}).json()
    assert sorted(f["rel"] for f in by_a["files"]) == sorted(old)
    assert dash.get("/api/files", params={"config": "xyz"}).status_code == 400
    # the Pipeline page lists every config the daemon ran
    configs = {c["sha256"]: c for c in dash.get("/api/configs").json()["configs"]}
    assert set(configs) == {digest_a, digest_b}
    assert configs[digest_b]["current"] and not configs[digest_a]["current"]
    assert (configs[digest_a]["processed"], configs[digest_b]["processed"]) == (2, 3)
    page = dash.get("/pipeline").text
    assert digest_a[:12] in page and digest_b[:12] in page
    assert dash.get("/reprocess", params={"config": digest_a, "match": "1"}).status_code == 200


def test_reprocess_form_and_failed(dashboard: Dashboard, queue: Queue) -> None:
    """The page's flow: count, confirm with the count shown; a failed file can be picked by
    state=failed; a file in no finished state is refused by the filter, not moved."""
    queue.drop("bad.log", b"")  # empty: rejected to failed/
    queue.drop("good.log", "2024-01-05 10:00:01 [INFO] API: fine\n")
    bad = wait_until(lambda: dashboard.find("failed", "bad.log"), 30, "bad.log failed")
    wait_until(lambda: dashboard.find("processed", "good.log"), 30, "good.log processed")
    match = dashboard.get("/reprocess", params={"state": "failed", "match": "1"})
    assert "1 file(s) match" in match.text and "bad.log" in match.text
    r = dashboard.post(
        "/reprocess", data={"state": "failed", "expect": "1"}, follow_redirects=False
    )
    assert r.status_code == 303 and "reprocessed+1+file" in r.headers["location"]

    def failed_twice() -> list[dict[str, Any]] | None:  # empty again: rejected again
        timeline = dashboard.file(bad["uid"])["timeline"]
        return timeline if [t["to_state"] for t in timeline].count("failed") == 2 else None

    timeline = wait_until(failed_twice, 30, "bad.log failed again")
    assert any(t["from_state"] == "failed" and t["to_state"] == "unprocessed"
               and t["reason"].startswith("reprocess (") for t in timeline)  # fmt: skip
    stale = dashboard.post(
        "/reprocess", data={"state": "processed", "expect": "7"}, follow_redirects=False
    )
    assert stale.status_code == 303 and "match=1" in stale.headers["location"]
    assert queue.files("processed") == ["good.log"]
    assert dashboard.get("/api/reprocess", params={"state": "bogus"}).status_code == 400
