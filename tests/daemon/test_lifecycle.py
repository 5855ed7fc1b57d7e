"""A real daemon process on a real queue: bursts, kill -9, signals, appends, name reuse."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Queue, assert_exactly_once, sha256_of, wait_until

pytestmark = pytest.mark.integration


def _count(queue: Queue, state: str) -> int:
    return len(queue.files(state))


def _assert_no_torn_results(queue: Queue) -> None:
    """Every summary parses, and every output it lists exists with the line count it says."""
    for name, s in queue.summaries().items():
        for out in s.get("output_files", []):
            path = queue.results / out
            assert path.exists(), f"{name}: listed output {out} missing"
            suffix = out.rsplit(".", 1)[1]
            lines = path.read_bytes().count(b"\n")
            assert lines == s["outputs"][suffix], f"{name}: {out} torn ({lines} lines)"
    assert queue.temp_results() == [] or all(p.name.startswith(".") for p in queue.temp_results())


def test_burst_of_500_files_is_processed_exactly_once(queue: Queue, start_daemon) -> None:
    start_daemon()
    names = [f"burst/f{i:03d}.log" for i in range(500)]
    for i, name in enumerate(names):
        queue.drop(name, f"line one of {i}\nline two\n")
    wait_until(lambda: _count(queue, "processed") == 500, 120, "500 files in processed/")
    assert_exactly_once(queue, names)
    _assert_no_torn_results(queue)


def test_sigkill_mid_burst_three_times_loses_nothing(queue: Queue, start_daemon) -> None:
    names = [f"k{i:03d}.log" for i in range(400)]
    body = "".join(f"{j} some log line with a little text\n" for j in range(40))
    for name in names[:200]:
        queue.drop(name, body)
    # Kill at three different moments: just after start, mid-burst while files are still
    # arriving, and near the end; files keep arriving while the daemon is dead, too. Each
    # new daemon recovers exactly what the killed one left in underprocess/.
    left: set[str] = set()
    for target, more in ((1, names[200:300]), (150, names[300:]), (330, []), (400, None)):
        d = start_daemon()
        assert {e["path"] for e in d.events("file_recovered")} == left
        wait_until(lambda t=target: _count(queue, "processed") >= t, 120, f">= {target} done")
        if more is None:
            break
        for name in more[: len(more) // 2]:
            queue.drop(name, body)
        d.kill()
        left = set(queue.files("underprocess"))
        for name in more[len(more) // 2 :]:
            queue.drop(name, body)
    assert_exactly_once(queue, names)
    _assert_no_torn_results(queue)


def test_file_appended_every_100ms_is_claimed_only_after_its_last_write(
    queue: Queue, start_daemon
) -> None:
    # A close halves the window to 1 s: appends 0.1 s apart leave 0.9 s for a stall of
    # this (loaded, shared) machine before a correct daemon would claim the file early.
    d = start_daemon("--settle", "2")
    path = queue.dir("unprocessed") / "growing.log"
    for i in range(20):  # 2 s of appends, each its own open/write/close (as `echo >>` does)
        with path.open("a") as f:
            f.write(f"append {i}\n")
        assert not d.events("file_claimed"), f"claimed after only {i + 1} appends"
        time.sleep(0.1)
    wait_until(lambda: queue.files("processed") == ["growing.log"], 30, "growing.log processed")
    summary = queue.summaries()["growing.log"]
    assert summary["lines_in"] == 20
    assert summary["sha256"] == sha256_of(queue.dir("processed") / "growing.log")


def test_same_name_dropped_three_times_gives_three_files_and_summaries(
    queue: Queue, start_daemon
) -> None:
    start_daemon()
    for i in range(3):
        queue.drop("same.log", f"version {i}\n")
        wait_until(lambda n=i + 1: _count(queue, "processed") == n, 30, f"drop {i} processed")
    assert queue.files("processed") == ["same.log", "same~1.log", "same~2.log"]
    summaries = queue.summaries()
    assert set(summaries) == {"same.log", "same~1.log", "same~2.log"}
    for name, s in summaries.items():
        assert s["sha256"] == sha256_of(queue.dir("processed") / name)
        assert s["original_name"] == "same.log"
    contents = {(queue.dir("processed") / n).read_text() for n in summaries}
    assert contents == {"version 0\n", "version 1\n", "version 2\n"}


def test_second_daemon_on_the_same_watch_dir_exits_1_naming_the_holder(
    queue: Queue, start_daemon
) -> None:
    first = start_daemon()
    second = start_daemon(wait=False)
    assert second.wait_exit(60) == 1
    assert f"PID {first.pid}" in second.output()
    assert first.proc.poll() is None, "the first daemon must keep running"


def test_lock_is_not_stale_after_kill_9(queue: Queue, start_daemon) -> None:
    start_daemon().kill()
    again = start_daemon()
    queue.drop("after.log", "x\n")
    wait_until(lambda: queue.files("processed") == ["after.log"], 30, "processed after restart")
    assert again.proc.poll() is None


def test_recovery_reprocesses_underprocess_and_removes_stale_temps(
    queue: Queue, start_daemon
) -> None:
    # What a crash leaves: a claimed input and a half-written temp result.
    (queue.dir("underprocess") / "sub").mkdir()
    (queue.dir("underprocess") / "sub" / "crashed.log").write_text("a\nb\n")
    tmp = queue.results / ".folderd-tmp"
    tmp.mkdir()
    (tmp / "deadbeef.1.out").write_text("torn")
    d = start_daemon()
    wait_until(lambda: queue.files("processed") == ["sub/crashed.log"], 30, "recovered file")
    assert queue.temp_results() == []
    assert d.events("file_recovered")[0]["path"] == "sub/crashed.log"
    s = queue.summaries()["sub/crashed.log"]
    assert s["attempts"] == 2, "the interrupted attempt is counted"
    assert queue.files("underprocess") == []


def test_sigterm_finishes_in_flight_files_and_exits_0(queue: Queue, start_daemon) -> None:
    d = start_daemon("--workers", "1")
    names = [f"t{i}.log" for i in range(200)]
    for name in names:
        queue.drop(name, "line\n" * 200)
    d.wait_event("file_started")
    d.signal(signal.SIGTERM)
    assert d.wait_exit(60) == 0
    assert queue.files("underprocess") == []
    assert sorted(queue.files("processed") + queue.files("unprocessed")) == sorted(names)
    stopped = d.events("daemon_stopped")[-1]
    assert stopped["reason"] == "signal"
    # Restarted, it takes up exactly where it stopped.
    start_daemon()
    wait_until(lambda: _count(queue, "processed") == 200, 60, "rest processed after restart")
    assert_exactly_once(queue, names)


def test_rescan_finds_files_the_watcher_never_reported(queue: Queue, start_daemon) -> None:
    # With --poll and a long poll interval the observer reports nothing in time; the
    # periodic rescan must still find the file.
    d = start_daemon("--poll", "--poll-interval", "3600", "--rescan-interval", "0.5")
    queue.drop("quiet.log", "x\n")
    wait_until(lambda: queue.files("processed") == ["quiet.log"], 30, "rescan to find it")
    assert d.events("watcher_started")[0]["kind"] == "polling"


def test_drain_processes_everything_queued_and_exits_0(queue: Queue, start_daemon) -> None:
    names = [f"d{i}.log" for i in range(20)]
    for name in names:
        queue.drop(name, "drain me\n")
    d = start_daemon("--drain", wait=False)
    assert d.wait_exit(60) == 0
    assert_exactly_once(queue, names)
    assert d.events("daemon_stopped")[-1]["reason"] == "drained"


def test_json_logs_carry_one_event_per_transition(queue: Queue, start_daemon) -> None:
    d = start_daemon()
    queue.drop("one.log", "x\n")
    done = d.wait_event("file_processed", path="one.log")
    claimed = d.wait_event("file_claimed", path="one.log")
    assert (claimed["from"], claimed["to"], claimed["attempt"]) == (
        "unprocessed",
        "underprocess",
        1,
    )
    assert (done["from"], done["to"], done["state"]) == ("underprocess", "processed", "processed")
    summary = queue.summaries()["one.log"]
    assert done["duration_ms"] == round(summary["duration_s"] * 1000, 1)
    assert done["level"] == "info" and "timestamp" in done


def test_concurrent_writer_thread_and_burst_do_not_interfere(queue: Queue, start_daemon) -> None:
    # A slow writer (non-atomic, chunked) beside a fast atomic burst: the slow file is
    # claimed whole, the burst is not held up by it.
    # Writes 0.1 s apart against a 1 s window: a stall of the writer up to 0.9 s is safe.
    start_daemon("--settle", "1")
    slow = queue.dir("unprocessed") / "slow.log"

    def write_slowly() -> None:
        with slow.open("w") as f:
            for i in range(20):
                f.write(f"slow {i}\n")
                f.flush()
                time.sleep(0.1)

    t = threading.Thread(target=write_slowly)
    t.start()
    for i in range(50):
        queue.drop(f"fast{i}.log", "fast\n")
    wait_until(lambda: _count(queue, "processed") >= 50, 60, "burst processed")
    t.join()
    wait_until(lambda: "slow.log" in queue.files("processed"), 30, "slow file processed")
    assert queue.summaries()["slow.log"]["lines_in"] == 20


def test_summary_records_what_design_promises(queue: Queue, start_daemon) -> None:
    start_daemon()
    queue.drop("keys.log", "a\nb\nc\n")
    wait_until(lambda: queue.files("processed") == ["keys.log"], 30, "processed")
    s = json.loads((queue.results / "keys.log.json").read_text())
    for key in (
        "source",
        "sha256",
        "status",
        "lines_in",
        "lines_out",
        "tags",
        "output_files",
        "attempts",
        "started",
        "finished",
        "duration_s",
    ):
        assert key in s, key
    assert s["lines_in"] == 3 and s["status"] == "processed" and s["attempts"] == 1
    assert os.path.exists(queue.results / s["output_files"][0])


def test_files_renamed_or_moved_away_before_they_settle_are_never_claimed(
    queue: Queue, start_daemon, tmp_path
) -> None:
    # The watcher is not told about moves out of unprocessed/ (see daemon/watcher.py); the
    # settle check and the claim notice the file is gone instead.
    d = start_daemon("--settle", "1.0")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    queue.drop("before.log", "renamed in place\n").rename(queue.dir("unprocessed") / "after.log")
    queue.drop("taken.log", "moved out\n").rename(elsewhere / "taken.log")
    queue.drop("marker.log", "dropped last\n")
    wait_until(lambda: len(queue.files("processed")) == 2, 30, "two files processed")
    assert queue.files("processed") == ["after.log", "marker.log"]
    assert queue.files("failed") == [] and queue.files("underprocess") == []
    assert (elsewhere / "taken.log").read_text() == "moved out\n"
    assert sorted(queue.summaries()) == ["after.log", "marker.log"]
    assert not d.events("claim_failed") and not d.events("file_vanished")


def test_a_move_the_journal_had_not_committed_is_reconciled_with_its_results(
    tmp_path: Path,
) -> None:
    # The loop commits the journal every few ms: a kill may land after a file reached
    # processed/ (its summary committed) but before the journal heard. Restart fills in
    # its state and its results from the summary.
    from daemon.journal import Journal
    from daemon.recovery import recover
    from daemon.states import FileRef, Folders, State

    folders = Folders(tmp_path / "w", tmp_path / "r")
    folders.create()
    Journal(tmp_path / "journal.sqlite3").close()
    journal = Journal(tmp_path / "journal.sqlite3")  # not a new one: nothing is rebuilt
    ref = FileRef("a" * 32, "done.log", State.CLAIMED, 1, "done.log", 3, 1)
    journal.add(ref)
    journal.flush()
    (folders.of(State.PROCESSED) / "done.log").write_text("x\n")
    summary = {"uid": ref.uid, "source": "done.log", "status": "processed", "sha256": "f" * 64,
               "lines_in": 1, "output_files": ["done.log.out"]}  # fmt: skip
    Path(folders.summary_path("done.log")).write_bytes(json.dumps(summary).encode())
    assert recover(folders, journal) == []
    rows = journal.execute(
        "check", "SELECT state, sha256, lines_in, outputs FROM files WHERE uid = ?", (ref.uid,)
    )
    assert rows == [("processed", "f" * 64, 1, '["done.log.out"]')]
