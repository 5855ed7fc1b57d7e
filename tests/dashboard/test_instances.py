"""Shared mode on the dashboard, over real HTTP: the Instances table, /health, /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_until, write_config
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration


def _metric(dash: Dashboard, name: str) -> float:
    m = re.search(rf"^{name}(?:_total)? (\S+)$", dash.get("/metrics").text, re.M)
    return float(m.group(1)) if m else -1.0


def _instances(dash: Dashboard) -> dict[str, dict[str, Any]]:
    shared = dash.get("/api/status").json()["shared"]
    return {i["name"]: i for i in shared["instances"]}


def test_instances_table_health_and_metrics_follow_a_peers_death(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    config = str(write_config(tmp_path / "slow.json", [node], ["end"]))
    common = ("--shared", "--lease", "2", "--workers", "1", "--config", config)
    a = start_dashboard(*common, "--instance", "alpha")
    b = start_dashboard(*common, "--instance", "beta")
    wait_until(lambda: "beta" in _instances(a), 10, "alpha sees beta")
    page = a.get("/").text
    assert "<h2>Instances</h2>" in page
    for name, pid in (("alpha", a.daemon.pid), ("beta", b.daemon.pid)):
        assert re.search(rf"<td>{name}( \(this one\))?</td><td>[^<]+</td><td>{pid}</td>", page)
    assert _metric(a, "folderd_lease_renewals") >= 1
    assert _metric(a, "folderd_takeovers") == 0

    queue.drop("long.log", "x\n" * 500)  # 5 s: whoever claims it still holds it below
    wait_until(lambda: any(queue.dir("underprocess").glob("*/long.log")), 30, "long.log claimed")
    holder, other = (
        (a, b) if (queue.dir("underprocess") / "alpha" / "long.log").exists() else (b, a)
    )
    holder.daemon.kill()
    wait_until(lambda: _metric(other, "folderd_takeovers") == 1, 15, "takeover counted")
    dead = _instances(other)[holder.daemon.events("lease_taken")[0]["instance"]]
    assert dead["state"] == "expired" and dead["pid"] == holder.daemon.pid
    health = other.get("/health")
    assert health.status_code == 200, health.text
    checks = {c["name"]: c for c in health.json()["checks"]}
    assert checks["lease"]["ok"] and checks["peers"]["ok"] and checks["peers"]["warning"]
    assert checks["identity"]["ok"], checks["identity"]  # a local folder: by inode, as is
    assert checks["identity"]["detail"] == "inputs named by inode numbers"
    assert "expired" in other.get("/").text
    wait_until(lambda: queue.files("processed") == ["long.log"], 30, "long.log processed")


@pytest.mark.browser
def test_the_instances_table_in_a_browser(
    start_dashboard: Callable[..., Dashboard], page: Any
) -> None:
    from playwright.sync_api import expect

    common = ("--shared", "--lease", "5", "--workers", "1")
    a = start_dashboard(*common, "--instance", "alpha")
    start_dashboard(*common, "--instance", "beta")
    wait_until(lambda: "beta" in _instances(a), 10, "alpha sees beta")
    page.goto(a.url + "/")
    rows = page.locator("table.instances tbody tr")
    expect(rows).to_have_count(2, timeout=30_000)
    expect(rows.nth(0)).to_contain_text("alpha (this one)")
    expect(rows.nth(1)).to_contain_text("beta")
    expect(rows.nth(1)).to_contain_text("running")


def _shared_folders(dash: Dashboard) -> dict[str, int] | None:
    folders = dash.get("/api/status").json()["shared"]["folders"]
    return folders and folders["files"]


def test_the_overview_counts_the_shared_folders_of_all_instances(
    start_dashboard: Callable[..., Dashboard], queue: Queue
) -> None:
    common = ("--shared", "--lease", "2", "--workers", "1")
    a = start_dashboard(*common, "--instance", "alpha")
    b = start_dashboard(*common, "--instance", "beta")
    names = [f"s{i:02d}.log" for i in range(40)]
    for name in names:
        queue.drop(name, f"line of {name}\n")
    queue.drop("left.part", "never claimed (--ignore-patterns)\n")  # stays in unprocessed/
    queue.drop(".hidden", "never claimed, never counted\n")
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "all processed")
    done = [len(d.daemon.events("file_processed")) for d in (a, b)]
    assert sum(done) == len(names), done
    want = {"unprocessed": 1, "underprocess": 0, "processed": len(names), "failed": 0}
    for dash in (a, b):  # each shows both instances' files, not only its own
        wait_until(lambda d=dash: _shared_folders(d) == want, 20, "shared counts caught up")
        page = dash.get("/").text
        assert "<h3>Shared folders</h3>" in page
        for folder, n in want.items():
            assert f'<td data-shared-count="{folder}">{n}</td>' in page, page
        metrics = dash.get("/metrics").text
        assert f'folderd_shared_folder_files{{folder="processed"}} {float(len(names))}' in metrics
        assert 'folderd_shared_folder_files{folder="unprocessed"} 1.0' in metrics
