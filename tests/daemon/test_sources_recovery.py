"""Sources when things go wrong: a file rewritten while it is processed, `kill -9` in the
middle of a version, a source's folder that vanishes (nothing is marked deleted), a
source added by SIGHUP."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DaemonProcess, Queue, sha256_of, wait_until
from tests.daemon.sources_helpers import entries, sources_config, summary, wait_version

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
SLOW = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}


def test_a_file_rewritten_while_processed_is_processed_again_as_it_ends(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.log").write_text("old\n" * 300)  # 3 s in the slow pipeline
    cfg = sources_config(tmp_path / "c.json", [{"name": "w", "path": str(src)}], [SLOW])
    d = start_daemon("--config", str(cfg))
    d.wait_event("source_version_started", path="w.log")
    (src / "w.log").write_text("new\n" * 20)

    def new_bytes() -> dict[str, Any] | None:
        x = summary(queue, "w", "w.log")
        ok = x and x["status"] == "processed" and x["sha256"] == sha256_of(src / "w.log")
        return x if ok else None

    s = wait_until(new_bytes, 60, "the new bytes processed")
    assert (queue.results / "sources/w/w.log.out").read_text() == "new\n" * 20
    assert s["attempts"] == 1  # the superseded attempt was not counted against the new version
    wait_until(lambda: entries(queue, "w")["w.log"] == ("done", 1), 10, "recorded")
    assert len(d.events("source_version_superseded")) == 1


def test_kill_9_mid_version_runs_it_again_once(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "k.log").write_text("line\n" * 400)
    (src / "quick.log").write_text("q\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "k", "path": str(src)}], [SLOW])
    d = start_daemon("--config", str(cfg), "--workers", "1")
    d.wait_event("source_version_started", path="k.log")
    # its row says running once the loop has committed it (with the journal, within 1 s)
    wait_until(lambda: entries(queue, "k")["k.log"][0] == "running", 10, "k.log running")
    d.kill()
    assert summary(queue, "k", "k.log") is None
    d2 = start_daemon("--config", str(cfg), "--workers", "1")
    assert d2.wait_event("source_versions_recovered")["versions"] >= 1  # (its worker
    # may hold the next file too)
    s = wait_version(queue, "k", "k.log", 1, timeout=60)
    wait_version(queue, "k", "quick.log", 1)
    assert s["status"] == "processed" and s["lines_out"] == 400
    assert (queue.results / "sources/k/k.log.out").read_text() == "line\n" * 400
    assert list(queue.results.rglob("k.log*.json")) == [queue.results / "sources/k/k.log.json"]
    assert queue.temp_results() == []


def test_a_vanished_source_marks_nothing_deleted_and_resumes(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.log").write_text(f"{i}\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "v", "path": str(src), "rescan_s": 0.5}])
    d = start_daemon("--config", str(cfg))
    for i in range(3):
        wait_version(queue, "v", f"{i}.log", 1)
    aside = tmp_path / "aside"
    src.rename(aside)  # an unmount, say
    d.wait_event("source_unavailable", source="v")
    wait_until(lambda: len(d.events("source_scanned")) >= 1, 10, "a walk")
    assert {s for s, _ in entries(queue, "v").values()} == {"done"}, "marked deleted"
    aside.rename(src)
    (src / "3.log").write_text("3\n")
    d.wait_event("source_available", source="v")
    wait_version(queue, "v", "3.log", 1)
    wait_until(lambda: [s for s, _ in entries(queue, "v").values()] == ["done"] * 4, 10, "4 done")


def test_sighup_adds_a_source_and_removing_it_keeps_its_results(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for d in (one, two):
        d.mkdir()
        (d / "f.log").write_text(f"{d.name}\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "one", "path": str(one)}])
    d = start_daemon("--config", str(cfg))
    wait_version(queue, "one", "f.log", 1)
    raw = json.loads(cfg.read_text())
    raw["sources"] = [{"name": "two", "path": str(two)}]
    cfg.write_text(json.dumps(raw))
    d.signal(signal.SIGHUP)
    d.wait_event("config_reloaded")
    wait_version(queue, "two", "f.log", 1)
    d.wait_event("source_removed", source="one")
    (one / "g.log").write_text("not watched now\n")
    shutil.copy(one / "g.log", two / "g.log")
    wait_version(queue, "two", "g.log", 1)
    assert summary(queue, "one", "g.log") is None and summary(queue, "one", "f.log") is not None
    assert sorted(os.listdir(one)) == ["f.log", "g.log"]
