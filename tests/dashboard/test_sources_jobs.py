"""Jobs through a real daemon and its API: `POST /api/sources` needs the token and a folder
under --source-roots; the command line's --sync does the same; a job of 10,000 files killed
with -9 mid-way resumes after a restart with its progress right; the Sources page shows a
running job's progress in a real Chromium, and a file's page its source and version."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Queue, wait_until
from tests.daemon.sources_helpers import entries, sources_config, summary
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-jobs"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _job(dash: Dashboard, job_id: int) -> dict[str, Any]:
    return dash.get(f"/api/sources/jobs/{job_id}").json()


def test_jobs_need_the_token_and_the_roots_and_the_cli_starts_one(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    roots, outside = tmp_path / "roots", tmp_path / "outside"
    desk = roots / "desk"
    desk.mkdir(parents=True)
    outside.mkdir()
    for i in range(20):
        (desk / f"{i}.log").write_text(f"{i}\n")
    (desk / "skip.txt").write_text("not a log\n")
    cfg = sources_config(tmp_path / "c.json", [])
    dash = start_dashboard("--config", str(cfg), "--source-roots", str(roots),
                           env={"FOLDERD_TOKEN": TOKEN})  # fmt: skip
    assert dash.post("/api/sources", json={"path": str(desk)}).status_code == 401
    r = dash.post("/api/sources", json={"path": str(outside)}, headers=AUTH)
    assert r.status_code == 403 and "--source-roots" in r.json()["error"]
    r = dash.post("/api/sources", json={"path": str(roots / ".." / "outside")}, headers=AUTH)
    assert r.status_code == 403
    r = dash.post("/api/sources", json={"path": str(desk), "glob": "*.log"}, headers=AUTH)
    assert r.status_code == 201, r.text
    job = r.json()
    done = wait_until(lambda: (j := _job(dash, job["id"]))["state"] == "done" and j, 60, "job")
    assert done["total_files"] == done["done_files"] == 20 and done["failed_files"] == 0
    listed = dash.get("/api/sources").json()
    (source,) = listed["sources"]
    assert source["adhoc"] and source["files"] == {"done": 20} and source["path"] == str(desk)
    assert summary(queue, source["name"], "skip.txt") is None

    (desk / "3.log").write_text("three, changed\n")  # the CLI's sync: one new version
    port = dash.url.rsplit(":", 1)[1]
    cli = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--port", port, "--sync", str(desk), "--glob",
         "*.log", "--wait"], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "FOLDERD_TOKEN": TOKEN},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    again = json.loads(cli.stdout)
    assert again["id"] != job["id"] and again["state"] == "done"
    assert again["done_files"] == 20 and again["total_files"] == 20
    assert summary(queue, source["name"], "3.log")["origin"]["version"]["number"] == 2
    assert len(dash.daemon.events("source_version_processed")) == 21
    no_token = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--port", port, "--sync", str(desk)],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert no_token.returncode == 2 and "401" in no_token.stderr


@pytest.mark.timeout(420)  # its own waits (120 s, 240 s); 160 s alone at a load of 30
def test_a_10000_file_job_resumes_after_kill_9_with_its_progress_right(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    roots = tmp_path / "roots"
    big = roots / "big"
    sizes = 0
    for d in range(10):
        (big / f"d{d}").mkdir(parents=True)
        for i in range(1000):
            data = f"{d} {i}\n".encode() * (1 + i % 3)
            (big / f"d{d}" / f"f{i}.log").write_bytes(data)
            sizes += len(data)
    cfg = sources_config(tmp_path / "c.json", [])
    args = ("--config", str(cfg), "--source-roots", str(roots), "--no-fsync", "--workers", "2")
    dash = start_dashboard(*args)
    job = dash.post("/api/sources", json={"path": str(big)}).json()
    wait_until(lambda: _job(dash, job["id"])["done_files"] >= 2000, 120, "2,000 files done")
    dash.daemon.kill()
    name = next(iter({s for s in _sources(queue)}))
    done_before = sum(1 for state, _ in entries(queue, name).values() if state == "done")

    dash2 = start_dashboard(*args)
    resumed = _job(dash2, job["id"])
    assert resumed["state"] in ("scanning", "running")
    assert resumed["done_files"] >= done_before >= 2000
    final = wait_until(lambda: (j := _job(dash2, job["id"]))["state"] == "done" and j, 240,
                       "the job done")  # fmt: skip
    assert final["total_files"] == final["done_files"] == 10_000
    assert final["total_bytes"] == final["done_bytes"] == sizes
    assert final["failed_files"] == final["pending_files"] == final["gone_files"] == 0
    rows = entries(queue, name)
    assert len(rows) == 10_000 and {s for s, _ in rows.values()} == {"done"}
    summaries = list((queue.results / "sources" / name).rglob("*.json"))
    assert len(summaries) == 10_000


def _sources(queue: Queue) -> list[str]:
    return [p.name for p in (queue.results / "sources").iterdir()]


@pytest.mark.browser
def test_the_sources_page_shows_a_running_job_in_chromium(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path, chromium: Any
) -> None:
    src = tmp_path / "watched"
    src.mkdir()
    for i in range(12):
        (src / f"s{i}.log").write_text("x\n" * 60)  # 60 lines x 10 ms: ~0.6 s a file
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    cfg = sources_config(tmp_path / "c.json", [{"name": "watched", "path": str(src)}], [node])
    dash = start_dashboard("--config", str(cfg), "--workers", "1")
    job = dash.post("/api/sources", json={"source": "watched"}).json()
    page = chromium.new_page()
    try:
        page.goto(f"{dash.url}/sources")
        row = page.locator(f'#job-table tr[data-job="{job["id"]}"]')
        row.wait_for(timeout=30_000)
        bar = row.locator("progress.job-progress")
        first = int(bar.get_attribute("value") or 0)
        wait_until(lambda: int(bar.get_attribute("value") or 0) > first, 60, "the bar moves")
        assert int(bar.get_attribute("max") or 0) == 12
        assert page.locator('#source-table tr[data-source="watched"]').is_visible()
        page.locator(f'#job-table tr[data-job="{job["id"]}"][data-state="done"]').wait_for(
            timeout=60_000
        )
        s = summary(queue, "watched", "s0.log")
        assert s is not None
        page.goto(f"{dash.url}/files/{s['uid']}")
        origin = page.locator("#origin")
        assert "watched" in origin.inner_text() and "version 1" in origin.inner_text()
    finally:
        page.close()


def test_a_failed_source_version_is_requeued_from_the_api(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.log").write_bytes(b"\xff\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "r", "path": str(src)}])
    dash = start_dashboard("--config", str(cfg))
    first = wait_until(lambda: (s := summary(queue, "r", "bad.log")) and s, 30, "the failure")
    assert first["status"] == "failed"
    wait_until(lambda: entries(queue, "r").get("bad.log") == ("failed", 1), 10, "recorded")
    r = dash.post(f"/api/files/{first['uid']}/requeue")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "bad.log"
    wait_until(lambda: entries(queue, "r").get("bad.log") == ("failed", 2), 30, "run again")
    again = summary(queue, "r", "bad.log")
    assert again is not None and again["origin"]["version"]["number"] == 2
    assert dash.post(f"/api/files/{first['uid']}/requeue").status_code == 200
    wait_until(lambda: entries(queue, "r").get("bad.log") == ("failed", 3), 30, "and again")
    (src / "bad.log").write_text("fixed\n")
    wait_until(lambda: entries(queue, "r").get("bad.log") == ("done", 4), 30, "fixed")
    r = dash.post(f"/api/files/{first['uid']}/requeue")
    assert r.status_code == 409 and "only failed" in r.json()["error"]
