"""Ready markers and batch folders through real daemons: a file waits for its marker
(before or after it, listed with its age while it waits, consumed with it), a marker
without a file is listed, never processed; a folder's marker makes its files one batch
whose status is an event of its own — journalled, on the dashboard, notified — and a
restart in the middle of a batch finishes it once."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from config.markers import parse_markers
from daemon.batches import Batches
from daemon.events import EventBus
from daemon.journal import Journal
from daemon.markers import SHOWN, SWEEP, Gate
from daemon.summary import Summary
from formats.names import shown
from tests.conftest import Queue, wait_until
from tests.daemon.receiver import Receiver
from tests.dashboard.conftest import start_dashboard  # noqa: F401  (a fixture)


def _config(path: Path, markers: dict[str, Any], **extra: Any) -> Path:
    path.write_text(json.dumps({"routes": [{"start": "end"}], "markers": markers, **extra}))
    return path


def _waiting(dash: Any) -> dict[str, dict[str, Any]]:
    return {m["path"]: m for m in dash.get("/api/files").json()["markers"]}


@pytest.mark.integration
def test_file_markers(
    start_dashboard: Any,  # noqa: F811  (the fixture imported above)
    queue: Queue,
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "p.json", {"file": "{name}.done", "late_s": 1})
    dash = start_dashboard("--config", str(config))
    d = dash.daemon

    queue.drop("before.csv.done", "")  # the marker first
    queue.drop("before.csv", "a,b\n")
    d.wait_event("file_processed", path="before.csv")
    wait_until(lambda: not (queue.dir("unprocessed") / "before.csv.done").exists(), 10,
               "its marker consumed")  # fmt: skip

    queue.drop("sub/after.csv", "c,d\n")  # the file first: it settles, then waits
    d.wait_event("file_waiting_for_marker", path="sub/after.csv")
    waiting = wait_until(lambda: _waiting(dash).get("sub/after.csv"), 10, "listed as waiting")
    assert waiting["waiting_for"] == "marker sub/after.csv.done"
    late = wait_until(lambda: (_waiting(dash).get("sub/after.csv") or {}).get("late"), 10,
                      "listed as late past late_s")  # fmt: skip
    assert late is True
    assert queue.files("unprocessed") == ["sub/after.csv"]  # not claimed meanwhile
    queue.drop("sub/after.csv.done", "")
    d.wait_event("file_processed", path="sub/after.csv")

    queue.drop("lonely.csv.done", "")  # a marker without its file: listed, never an input
    orphan = wait_until(lambda: _waiting(dash).get("lonely.csv.done"), 10, "the lone marker")
    assert orphan["waiting_for"] == "its file (a marker without one)"
    queue.drop("lonely.csv", "e\n")
    d.wait_event("file_processed", path="lonely.csv")
    wait_until(lambda: not _waiting(dash), 10, "nothing waiting")

    assert sorted(queue.files("processed")) == ["before.csv", "lonely.csv", "sub/after.csv"]
    assert queue.files("unprocessed") == [] and queue.files("failed") == []
    assert sorted(queue.summaries()) == ["before.csv", "lonely.csv", "sub/after.csv"]


def test_stem_pattern() -> None:
    config, errors = parse_markers({"file": "{stem}.ok"})
    assert errors == []
    assert config.marker_of("x.csv") == "x.ok" and config.marker_of("README") == "README.ok"
    assert config.is_file_marker("x.ok") and not config.is_file_marker("x.csv")
    assert parse_markers({"file": "{name}"})[1] and parse_markers({"file": ".{name}.x"})[1]
    assert parse_markers({"folder": True})[0].folder == "_SUCCESS"


def _batches(queue: Queue) -> list[dict[str, Any]]:
    journal = queue.root / ".folderd" / "journal.sqlite3"
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM batches ORDER BY id")]


@pytest.mark.integration
def test_batch_folders(
    start_dashboard: Any,  # noqa: F811  (the fixture imported above)
    queue: Queue,
    tmp_path: Path,
) -> None:
    receiver = Receiver().start()
    try:
        notify = [{"url": receiver.url, "secret": "s3cret", "events": ["batch.done"],
                   "backoff_s": 0.05}]  # fmt: skip
        config = _config(tmp_path / "p.json", {"folder": True}, notify=notify)
        dash = start_dashboard("--config", str(config))
        d = dash.daemon
        queue.drop("b1/x1.log", "one\n")
        queue.drop("b1/deep/x2.log", "")  # empty: it fails
        queue.drop("top.log", "not in a batch folder\n")
        d.wait_event("file_processed", path="top.log")
        for name in ("b1/x1.log", "b1/deep/x2.log"):
            d.wait_event("file_waiting_for_marker", path=name)
        # the dashboard reads a snapshot: it lists the file within a moment of the event
        waiting = wait_until(lambda: _waiting(dash).get("b1/x1.log"), 10, "b1/x1.log listed")
        assert waiting["waiting_for"] == "batch marker b1/_SUCCESS"
        queue.drop("b1/_SUCCESS", "")
        done = d.wait_event("batch_done", folder="b1")
        assert (done["status"], done["processed"], done["failed"]) == ("some_failed", 1, 1)
        (batch,) = _batches(queue)
        assert (batch["status"], batch["files"], batch["folder"]) == ("some_failed", 2, "b1")
        report = json.loads(batch["report"])
        assert report["failure_reasons"] == {"Rejected": 1} and report["members"] == 2
        assert not (queue.dir("unprocessed") / "b1" / "_SUCCESS").exists()  # consumed
        (taken,) = wait_until(lambda: receiver.of("batch.done"), 30, "batch.done notified")
        assert taken.body["report"] == report and taken.signed_ok
        shown = dash.get("/api/batches").json()["batches"]
        assert shown[0]["status"] == "some_failed" and shown[0]["report"] == report
        assert "b1" in dash.get("/batches").text
        assert dash.get("/api/batches", params={"limit": "many"}).status_code == 400

        queue.drop("b2/y.log", "two\n")  # a second batch: all processed
        queue.drop("b2/_SUCCESS", "")
        done = d.wait_event("batch_done", folder="b2")
        assert done["status"] == "all_processed"
        wait_until(lambda: len(receiver.of("batch.done")) == 2, 30, "the second batch notified")
        assert queue.files("unprocessed") == []
    finally:
        receiver.close()


@pytest.mark.integration
def test_a_batch_survives_a_kill(start_daemon: Any, queue: Queue, tmp_path: Path) -> None:
    """Killed while its files run: the batch is resumed from the journal and done once;
    a file that came after its marker waits for the next one.

    Members run in the order they settled, not by name: f0, written last here, runs last.
    The kill comes after the first member to finish (f1), so two are left (#30: this test
    killed after f0, assuming it ran first; it had not when f0's events came before the
    daemon watched the new run/ folder — its scan then gave f0 the full settle window, and
    f1 and f2, renamed into a folder already watched, 5 ms — and the kill came after the
    batch was done: nothing to resume)."""
    node = {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "end"}
    config = tmp_path / "p.json"
    config.write_text(json.dumps({"routes": [{"start": "in"}], "nodes": [node],
                                  "markers": {"folder": "READY"}}))  # fmt: skip
    d = start_daemon("--config", str(config), "--workers", "1")
    for i in (1, 2, 0):
        queue.drop(f"run/f{i}.log", "x\n" * 300)  # ~3 s each
        d.wait_event("file_waiting_for_marker", path=f"run/f{i}.log")
    queue.drop("run/READY", "")
    d.wait_event("batch_opened", folder="run")
    queue.drop("run/after.log", "late\n")  # after the marker: not of this batch
    d.wait_event("file_processed", path="run/f1.log")
    d.kill()
    assert [e["path"] for e in d.events("file_processed")] == ["run/f1.log"]
    d2 = start_daemon("--config", str(config), "--workers", "1")
    resumed = [(e["files"], e["left"]) for e in d2.events("batch_resumed")]  # before started
    assert resumed == [(3, 2)], d2.output()[-3000:]
    done = d2.wait_event("batch_done", folder="run", timeout=60)
    why = f"{done}\n{_batches(queue)}\n{d2.output()[-3000:]}"  # (seen once under load)
    assert (done["status"], done["processed"]) == ("all_processed", 3), why
    assert [b["status"] for b in _batches(queue)] == ["all_processed"], why
    assert queue.files("unprocessed") == ["run/after.log"], why  # waits for the next marker
    queue.drop("run/READY", "")
    d2.wait_event("file_processed", path="run/after.log")
    assert [b["files"] for b in _batches(queue)] == [3, 1]


def test_many_waiting_cost_the_loop_little(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 files waiting for their markers: a marker's event looks at its own file only,
    and a tick (the look for a marker whose event was lost) at most SWEEP of them, taking
    turns, so the lost one is still found — the loop never stats every waiting file at
    once."""
    queue_dir = tmp_path / "unprocessed"
    queue_dir.mkdir()
    journal = Journal(tmp_path / "journal.sqlite3")
    gate = Gate(str(queue_dir), parse_markers({"file": "{stem}.ok"})[0],
                Batches(journal, str(queue_dir), EventBus()), lambda rel: False,
                lambda rel: None)  # fmt: skip
    n = 20_000
    paths = [str(queue_dir / f"f{i}.csv") for i in range(n)]
    for path in paths:
        assert gate.hold(path, None, 0)  # type: ignore[arg-type]  # (no signature needed)
    stats = 0
    lexists = os.path.lexists

    def counted(path: str) -> bool:
        nonlocal stats
        stats += 1
        return lexists(path)

    monkeypatch.setattr(os.path, "lexists", counted)
    (queue_dir / "f7.ok").touch()
    released = gate.marker_seen(str(queue_dir / "f7.ok"))
    assert [r[0] for r in released] == [paths[7]] and stats <= 2
    stats = 0
    assert gate.tick() == [] and stats <= SWEEP
    (queue_dir / "f9.ok").touch()  # its event lost: the tick's turns find it
    ticks, found = 0, []
    while not found and ticks <= n // SWEEP + 1:
        found, ticks = gate.tick(), ticks + 1
    assert [r[0] for r in found] == [paths[9]]
    assert stats <= ticks * SWEEP + SWEEP
    assert len(gate) == n - 2 and len(gate.view()) == SHOWN
    journal.close()


@pytest.mark.integration
def test_names_that_are_not_utf8(
    start_dashboard: Any,  # noqa: F811  (the fixture imported above)
    queue: Queue,
    tmp_path: Path,
) -> None:
    """A file, its marker and a batch folder whose names are not UTF-8: listed as shown
    (`formats.names`) while they wait, claimed when their markers come, the batch's
    folder shown in its report."""
    odd = os.fsdecode(b"caf\xe9")  # Latin-1: no UTF-8 decoder accepts it
    config = _config(tmp_path / "p.json", {"file": "{name}.done", "folder": True})
    dash = start_dashboard("--config", str(config))
    d = dash.daemon
    queue.drop(f"{odd}.csv", "a\n")
    listed = wait_until(lambda: _waiting(dash).get(shown(f"{odd}.csv")), 20, "listed as shown")
    assert listed["waiting_for"] == "marker caf\\xe9.csv.done"
    queue.drop(f"{odd}.csv.done", "")
    d.wait_event("file_processed", path=shown(f"{odd}.csv"))  # logs show names too
    queue.drop(f"{odd}/x.log", "b\n")
    queue.drop(f"{odd}/x.log.done", "")  # a file of a batch folder waits for both markers
    queue.drop(f"{odd}/_SUCCESS", "")
    done = d.wait_event("batch_done", timeout=30)
    assert done["status"] == "all_processed"
    (batch,) = dash.get("/api/batches").json()["batches"]
    assert batch["folder"] == "caf\\xe9" and batch["report"]["folder"] == "caf\\xe9"
    assert sorted(queue.files("processed")) == sorted([f"{odd}.csv", f"{odd}/x.log"])


class _Killed(BaseException):
    """The daemon's death at a chosen point (kill -9 runs no handler: nothing catches it)."""


def _done_then_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A batch of b/ done, its end committed, the daemon killed before the marker's removal;
    (unprocessed/, the journal)."""
    queue_dir, journal_path = tmp_path / "unprocessed", tmp_path / "journal.sqlite3"
    (queue_dir / "b").mkdir(parents=True)
    (queue_dir / "b" / "x.log").write_text("x\n")
    (queue_dir / "b" / "_SUCCESS").touch()
    journal = Journal(journal_path)
    batches = Batches(journal, str(queue_dir), EventBus())
    batches.open("b", ["b/x.log"], "b/_SUCCESS")
    unlink = os.unlink

    def killed_at_the_marker(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith("_SUCCESS"):
            raise _Killed
        unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", killed_at_the_marker)
    with pytest.raises(_Killed):
        batches.finished(
            Summary.from_json({"uid": "u1", "source": "b/x.log", "status": "processed"})
        )
    monkeypatch.undo()
    journal.close()  # (nothing uncommitted: the kill came after the commit)
    with sqlite3.connect(journal_path) as conn:
        assert conn.execute("SELECT status FROM batches").fetchall() == [("all_processed",)]
    (queue_dir / "b" / "late.log").write_text("after the marker\n")  # not of that batch
    return queue_dir, journal_path


def _restarted(queue_dir: Path, journal_path: Path) -> tuple[Batches, list[str]]:
    """The next start: the batches loaded, then the scan's look at b/'s marker if there is
    one (`Intake.scan`); what that marker released."""
    batches = Batches(Journal(journal_path), str(queue_dir), EventBus())
    batches.load()
    gate = Gate(str(queue_dir), parse_markers({"folder": True})[0], batches, lambda rel: False,
                lambda rel: None)  # fmt: skip
    late = str(queue_dir / "b" / "late.log")
    assert gate.hold(late, None, 0)  # type: ignore[arg-type]  # (no signature needed)
    marker = queue_dir / "b" / "_SUCCESS"
    released = gate.marker_seen(str(marker)) if marker.exists() else []
    return batches, [gate.rel(path) for path, _, _ in released]


def test_a_marker_left_by_a_kill_opens_no_second_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the commit of a batch's end and the removal of its marker: the next
    start removes the marker, so the file that came after it waits for the next one
    instead of making a second batch of the old marker (#30)."""
    queue_dir, journal_path = _done_then_killed(tmp_path, monkeypatch)
    batches, released = _restarted(queue_dir, journal_path)
    assert not (queue_dir / "b" / "_SUCCESS").exists()
    assert released == [] and not batches.is_open("b")
    with sqlite3.connect(journal_path) as conn:
        assert conn.execute("SELECT COUNT(*), MAX(marker_id) FROM batches").fetchone() == (1, None)


def test_a_new_marker_written_after_the_kill_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old marker removed by someone else while the daemon was down and a new one
    written in its place (an inode may be reused; its ctime is another): the new one is
    not taken for the old, and opens the next batch."""
    queue_dir, journal_path = _done_then_killed(tmp_path, monkeypatch)
    marker = queue_dir / "b" / "_SUCCESS"
    old = marker.stat().st_ctime_ns
    marker.unlink()
    wait_until(lambda: time.time_ns() > old + 50_000_000, 5, "a later ctime")  # coarse clock
    marker.touch()
    batches, released = _restarted(queue_dir, journal_path)
    assert marker.exists() and batches.is_open("b")
    assert released == ["b/late.log"]
