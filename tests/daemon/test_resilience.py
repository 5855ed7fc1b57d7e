"""Errors in the environment (permissions, a corrupt journal, a deleted folder) are logged,
never fatal, and everything resumes once they are fixed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3

import pytest

from tests.conftest import Queue, wait_until

pytestmark = pytest.mark.integration

# Root bypasses permissions; drop the capabilities that let it, so they really apply.
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()


def test_a_folder_it_cannot_claim_from_is_logged_and_retried_at_rescans(
    queue: Queue, start_daemon
) -> None:
    locked = queue.dir("unprocessed") / "locked"
    locked.mkdir()
    (locked / "a.log").write_text("waiting\n")
    locked.chmod(0o555)  # no one may move files out of it
    try:
        d = start_daemon("--rescan-interval", "0.5", prefix=NO_DAC)
        d.wait_event("claim_failed", path="locked/a.log")
        queue.drop("free.log", "x\n")
        wait_until(lambda: queue.files("processed") == ["free.log"], 30, "other files flow")
        assert d.proc.poll() is None
    finally:
        locked.chmod(0o755)
    wait_until(lambda: "locked/a.log" in queue.files("processed"), 30, "claimed once fixed")
    assert queue.summaries()["locked/a.log"]["status"] == "processed"


def test_a_processed_folder_it_cannot_write_is_retried_until_fixed(
    queue: Queue, start_daemon
) -> None:
    d = start_daemon("--max-attempts", "50", prefix=NO_DAC)  # start-up would refuse it
    queue.dir("processed").chmod(0o555)  # broken while running
    try:
        queue.drop("a.log", "line\n")
        d.wait_event("file_move_failed", path="a.log")
        assert queue.files("underprocess") == ["a.log"], "kept, not lost"
    finally:
        queue.dir("processed").chmod(0o755)
    wait_until(lambda: queue.files("processed") == ["a.log"], 60, "moved once fixed")
    summary = queue.summaries()["a.log"]
    assert summary["status"] == "processed" and summary["attempts"] >= 2
    assert [p.name for p in queue.results.glob("a.log*")].count("a.log.json") == 1


def test_results_it_cannot_commit_are_retried_and_nothing_is_half_written(
    queue: Queue, start_daemon
) -> None:
    # Workers commit their own results: a results folder they cannot write into turns the
    # attempt into a retry, the input stays in underprocess/, and no temp is left behind.
    locked = queue.results / "sub"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        d = start_daemon("--max-attempts", "50", prefix=NO_DAC)
        queue.drop("sub/a.log", "line\n")
        retry = d.wait_event("file_retry_scheduled", path="sub/a.log")
        assert "committing results" in retry["error"]
        assert queue.files("underprocess") == ["sub/a.log"], "kept, not lost"
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)
    wait_until(lambda: queue.files("processed") == ["sub/a.log"], 60, "processed once fixed")
    assert queue.summaries()["sub/a.log"]["status"] == "processed"
    assert queue.temp_results() == []


def test_a_corrupt_journal_is_moved_aside_and_rebuilt(queue: Queue, start_daemon) -> None:
    meta = queue.root / ".folderd"
    meta.mkdir()
    (meta / "journal.sqlite3").write_bytes(b"not a database, just bytes\n" * 100)
    queue.drop("a.log", "x\n")
    d = start_daemon()
    assert d.events("journal_corrupt")
    wait_until(lambda: queue.files("processed") == ["a.log"], 30, "processed")
    assert any(p.name.startswith("journal.sqlite3.corrupt-") for p in meta.iterdir())


def test_unprocessed_deleted_while_running_is_recreated_and_watched_again(
    queue: Queue, start_daemon
) -> None:
    d = start_daemon()
    shutil.rmtree(queue.dir("unprocessed"))
    d.wait_event("watcher_died", timeout=30)
    wait_until(lambda: queue.dir("unprocessed").is_dir(), 30, "unprocessed/ recreated")
    wait_until(lambda: len(d.events("watcher_started")) >= 2, 30, "watcher restarted")
    queue.drop("back.log", "x\n")
    wait_until(lambda: queue.files("processed") == ["back.log"], 30, "watched again")


def _journal_rows(queue: Queue) -> dict[str, tuple[str, str]]:
    """rel -> (state, uid), read from the journal file as any reader would."""
    path = queue.root / ".folderd" / "journal.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {r: (s, u) for r, s, u in conn.execute("SELECT rel, state, uid FROM files")}


def test_a_journal_deleted_while_stopped_is_rebuilt_from_the_folders_and_summaries(
    queue: Queue, start_daemon
) -> None:
    d = start_daemon()
    queue.drop("good.log", "fine\n")
    queue.drop("empty.log", "")
    wait_until(lambda: len(queue.summaries()) == 2, 30, "both finished")
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    for name in os.listdir(queue.root / ".folderd"):
        if name.startswith("journal"):
            os.unlink(queue.root / ".folderd" / name)
    d = start_daemon()
    summaries = queue.summaries()
    assert _journal_rows(queue) == {
        "good.log": ("processed", summaries["good.log"]["uid"]),
        "empty.log": ("failed", summaries["empty.log"]["uid"]),
    }
    assert d.wait_event("journal_rebuilt")["files"] == 2


def test_a_journal_deleted_while_running_is_replaced_and_keeps_recording(
    queue: Queue, start_daemon
) -> None:
    d = start_daemon()
    queue.drop("before.log", "x\n")
    wait_until(lambda: queue.files("processed") == ["before.log"], 30, "processed")
    os.unlink(queue.root / ".folderd" / "journal.sqlite3")
    d.wait_event("journal_replaced")
    queue.drop("after.log", "y\n")
    wait_until(lambda: "after.log" in queue.files("processed"), 30, "processed")
    wait_until(lambda: set(_journal_rows(queue)) == {"before.log", "after.log"}, 30,
               "both in the new journal")  # fmt: skip
    assert d.proc.poll() is None
