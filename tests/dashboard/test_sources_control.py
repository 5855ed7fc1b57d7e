"""Sources under an operator's hand and a failing machine, through a real daemon: a job
cancelled from the command line stops where it is (what it still waited for is not
processed, and a new job picks it up); a full results disk pauses a source's versions
without failing or charging any, and they all run once when space returns."""

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
from tests.daemon.test_environment import tmpfs  # noqa: F401 (a fixture)
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

TOKEN = "t0ken-for-control"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}


def _job(dash: Dashboard, job_id: int) -> dict[str, Any]:
    return dash.get(f"/api/sources/jobs/{job_id}").json()


def _states(queue: Queue, source: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for state, _ in entries(queue, source).values():
        out[state] = out.get(state, 0) + 1
    return out


def test_a_job_cancelled_from_the_cli_stops_and_a_new_one_finishes_it(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    roots = tmp_path / "roots"
    folder = roots / "camera"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"{i:02d}.log").write_text("x\n" * 50)  # 50 lines x 10 ms: 0.5 s a file
    cfg = sources_config(tmp_path / "c.json", [], [SLOW])
    dash = start_dashboard("--config", str(cfg), "--source-roots", str(roots), "--workers", "1",
                           env={"FOLDERD_TOKEN": TOKEN})  # fmt: skip
    job = dash.post("/api/sources", json={"path": str(folder)}, headers=AUTH).json()
    wait_until(lambda: _job(dash, job["id"])["done_files"] >= 2, 60, "two files done")
    port = dash.url.rsplit(":", 1)[1]
    cli = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--port", port, "--sync-cancel", str(job["id"])],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "FOLDERD_TOKEN": TOKEN},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["state"] == "cancelled"
    again = dash.post(f"/api/sources/jobs/{job['id']}/cancel", headers=AUTH)
    assert again.status_code == 409 and "cancelled already" in again.json()["error"]
    name = next(p.name for p in (queue.results / "sources").iterdir())

    def settled() -> dict[str, int] | None:  # nothing running or waiting: the rest cancelled
        states = _states(queue, name)
        return states if not {"running", "pending"} & set(states) else None

    states = wait_until(settled, 30, "the job's files settled")
    assert states.get("cancelled", 0) > 0 and states["done"] + states["cancelled"] == 40
    started = len(dash.daemon.events("source_version_started"))
    assert started == states["done"], "a cancelled file was processed"
    assert _job(dash, job["id"])["state"] == "cancelled"

    r = dash.post("/api/sources", json={"path": str(folder)}, headers=AUTH)
    assert r.status_code == 201, r.text
    second = r.json()
    asked = dash.get(f"/api/sources/jobs/{second['id']}")  # at once: before a snapshot has it
    assert asked.status_code == 200 and asked.json()["id"] == second["id"], asked.text
    final = wait_until(lambda: (j := _job(dash, second["id"]))["state"] == "done" and j, 120,
                       "the second job done")  # fmt: skip
    assert final["total_files"] == final["done_files"] == 40
    assert _states(queue, name) == {"done": 40}
    assert len(dash.daemon.events("source_version_started")) == 40, "a file processed twice"


def test_a_full_results_disk_holds_a_sources_versions_and_fails_none(
    start_dashboard: Callable[..., Dashboard],
    queue: Queue,
    tmp_path: Path,
    tmpfs: Callable[[Path, str], None],  # noqa: F811
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    line = "x" * 99 + "\n"
    for i in range(30):  # 30 x 100 KB of output: three times what the disk holds
        (src / f"f{i:02d}.log").write_text(line * 1000)
    tmpfs(queue.results, "1m")
    cfg = sources_config(tmp_path / "c.json", [{"name": "e", "path": str(src)}])
    dash = start_dashboard("--config", str(cfg), "--min-disk-free-mb", "0")

    def paused() -> bool:
        r = dash.get("/health")
        return any(c["name"] == "paused" and not c["ok"] for c in r.json()["checks"])

    wait_until(paused, 60, "/health naming the pause")
    assert dash.daemon.events("source_version_held")
    assert "failed" not in _states(queue, "e")
    assert dash.daemon.events("source_version_failed") == []

    subprocess.run(["mount", "-o", "remount,size=64m", str(queue.results)], check=True)
    wait_until(lambda: _states(queue, "e") == {"done": 30}, 120, "all 30 done")
    for i in range(30):
        s = summary(queue, "e", f"f{i:02d}.log")
        assert s is not None and s["status"] == "processed" and s["attempts"] == 1, s
        assert s["origin"]["version"]["number"] == 1
    wait_until(lambda: not paused(), 30, "/health healthy again")
