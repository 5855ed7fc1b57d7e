"""The loop's steps in-process, on real folders and a real journal: claim, reject, and what
follows an attempt (done, retry, give up, vanished, never started)."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from daemon.attempt import Outcome, Status
from daemon.claims import Claimer
from daemon.events import EventBus
from daemon.faults import Pause, PauseReason
from daemon.intake import Intake
from daemon.journal import Journal
from daemon.outcomes import Outcomes, Waiting
from daemon.states import FileRef, Folders, State
from daemon.summary import Start, Summary, given_up
from daemon.watcher import ignore_matcher


@dataclass
class Steps:
    folders: Folders
    journal: Journal
    intake: Intake
    waiting: Waiting
    outcomes: Outcomes
    claimer: Claimer
    events: list[dict[str, Any]]

    def drop(self, rel: str, body: str = "x\n") -> Path:
        path = self.folders.of(State.QUEUED) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        return path

    def settle_all(self) -> None:
        """What the loop's intake steps do once every window has passed."""
        self.intake.scan(str(self.folders.of(State.QUEUED)))
        self.intake.settle_due(time.monotonic() + 60)

    def summary(self, rel: str) -> dict[str, Any]:
        return orjson.loads((self.folders.results / f"{rel}.json").read_bytes())

    def row_state(self, uid: str) -> State:
        row = self.journal.get(uid)
        assert row is not None
        return row.state


@pytest.fixture
def steps(tmp_path: Path) -> Steps:
    folders = Folders(tmp_path / "watch_dir", tmp_path / "results")
    folders.create()
    journal = Journal(folders.journal)
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.subscribe(seen.append)
    intake = Intake(str(folders.of(State.QUEUED)), 0.5, ignore_matcher(["*.part"]))
    waiting = Waiting()
    pause = Pause()
    outcomes = Outcomes(
        folders, journal, bus, waiting, pause, max_attempts=3, retry_backoff=0.01, fsync=False
    )
    claimer = Claimer(folders, journal, intake, outcomes, zero_mtime="fail", empty_files="fail")
    yield Steps(folders, journal, intake, waiting, outcomes, claimer, seen)
    journal.close()


def _claimed(steps: Steps, rel: str) -> FileRef:
    steps.drop(rel)
    steps.settle_all()
    ref = steps.claimer.next()
    assert ref is not None and ref.rel == rel
    return ref


def _failed(ref: FileRef, error: dict[str, Any]) -> Summary:
    """The summary of an attempt at `ref` cut short by `error` (never committed)."""
    return Start.now(ref.uid, ref.rel, ref.original, ref.attempt).failed(error)


def test_a_settled_file_is_claimed_by_one_rename_with_its_first_attempt(steps: Steps) -> None:
    steps.drop("sub/a.log", "hello\n")
    steps.settle_all()
    with capture_logs() as logs:
        ref = steps.claimer.next()
    assert ref is not None
    assert (ref.state, ref.rel, ref.attempt, ref.size) == (State.CLAIMED, "sub/a.log", 1, 6)
    assert (steps.folders.of(State.CLAIMED) / "sub/a.log").read_text() == "hello\n"
    assert [e["event"] for e in logs] == ["file_claimed"]
    assert steps.row_state(ref.uid) is State.CLAIMED
    assert steps.claimer.next() is None, "nothing else has settled"


def test_a_file_that_changed_after_settling_is_not_claimed_but_settles_again(
    steps: Steps,
) -> None:
    path = steps.drop("a.log", "one\n")
    steps.settle_all()
    with path.open("a") as f:
        f.write("two\n")
    assert steps.claimer.next() is None
    assert path.exists() and len(steps.intake) == 1, "back to settling, not forgotten"
    steps.intake.settle_due(time.monotonic() + 60)
    ref = steps.claimer.next()
    assert ref is not None and ref.size == len("one\ntwo\n")


def test_an_empty_file_and_a_fifo_are_rejected_to_failed_with_their_reason(
    steps: Steps,
) -> None:
    steps.drop("empty.log", "")
    os.mkfifo(steps.folders.of(State.QUEUED) / "pipe.log")
    steps.settle_all()
    assert steps.claimer.next() is None
    assert sorted(os.listdir(steps.folders.of(State.FAILED))) == ["empty.log", "pipe.log"]
    assert steps.summary("empty.log")["error"] == {
        "type": "Rejected",
        "message": "empty file (0 bytes)",
    }
    assert "FIFO" in steps.summary("pipe.log")["error"]["message"]
    assert steps.outcomes.totals["rejected"] == 2
    assert sorted(e["path"] for e in steps.events if e["kind"] == "file_failed") == [
        "empty.log",
        "pipe.log",
    ]


def test_a_file_returned_to_unprocessed_keeps_its_row_and_attempts(steps: Steps) -> None:
    from daemon.moves import transition

    ref = _claimed(steps, "a.log")
    transition(steps.folders, steps.journal, ref, State.QUEUED, reason="shutdown")
    steps.settle_all()
    again = steps.claimer.next()
    assert again is not None
    assert (again.uid, again.attempt) == (ref.uid, 2)


def test_cancelling_a_file_that_is_not_waiting_raises_and_moves_nothing(steps: Steps) -> None:
    with pytest.raises(FileNotFoundError):
        steps.claimer.reject_queued("nope.log", "cancelled")
    steps.drop("a.log")
    ref = steps.claimer.reject_queued("a.log", "cancelled")
    assert ref.state is State.FAILED and steps.summary("a.log")["error"]["message"] == "cancelled"


def test_a_transient_error_waits_with_backoff_then_gives_up_at_max_attempts(
    steps: Steps,
) -> None:
    ref = _claimed(steps, "a.log")
    error = {"type": "OSError", "message": "[errno 16] Device or resource busy"}
    delays = []
    for attempt in (1, 2):
        assert ref.attempt == attempt
        with capture_logs() as logs:
            steps.outcomes.finish(ref, Outcome(Status.RETRY, _failed(ref, error)))
        (scheduled,) = [e for e in logs if e["event"] == "file_retry_scheduled"]
        delays.append(scheduled["delay_s"])
        assert steps.waiting.pop() is None, "not before its back-off"
        steps.waiting.release_due(time.monotonic() + 60)
        assert steps.waiting.pop() is ref
        ref.attempt += 1  # what dispatch does when it starts the next attempt
    assert 0.005 <= delays[0] <= 0.015 and 0.01 <= delays[1] <= 0.03, delays
    steps.outcomes.finish(ref, Outcome(Status.RETRY, _failed(ref, error)))
    assert os.listdir(steps.folders.of(State.FAILED)) == ["a.log"]
    message = steps.summary("a.log")["error"]["message"]
    assert message == "[errno 16] Device or resource busy (gave up after 3 attempts)"
    totals = steps.outcomes.totals
    assert (totals["processed"], totals["failed"], totals["retried"]) == (0, 1, 2)


def test_a_processed_outcome_moves_the_input_and_counts_its_bytes(steps: Steps) -> None:
    ref = _claimed(steps, "a.log")
    summary = Start.now(ref.uid, ref.rel, ref.original, ref.attempt).processed(size=2)
    steps.outcomes.finish(ref, Outcome(Status.PROCESSED, summary))
    assert os.listdir(steps.folders.of(State.PROCESSED)) == ["a.log"]
    assert steps.row_state(ref.uid) is State.PROCESSED
    assert (steps.outcomes.totals["processed"], steps.outcomes.totals["bytes"]) == (1, 2)
    assert [e["kind"] for e in steps.events] == ["file_processed"]


def test_a_job_a_dying_worker_never_started_goes_first_with_its_attempt_back(
    steps: Steps,
) -> None:
    first = _claimed(steps, "a.log")
    second = _claimed(steps, "b.log")
    steps.waiting.put(first)
    steps.outcomes.finish(second, Outcome(Status.UNSTARTED, None))
    assert steps.waiting.pop() is second and second.attempt == 0
    assert steps.waiting.pop() is first


def test_a_file_removed_while_it_was_processed_is_journaled_missing(steps: Steps) -> None:
    ref = _claimed(steps, "a.log")
    os.unlink(ref.path(steps.folders))
    error = {"type": "FileNotFoundError", "message": "gone"}
    summary = given_up(ref.uid, ref.rel, ref.original, 1, 0, error)
    with capture_logs() as logs:
        steps.outcomes.finish(ref, Outcome(Status.VANISHED, summary))
    assert steps.row_state(ref.uid) is State.MISSING
    assert [e["event"] for e in logs] == ["file_vanished"]
    assert steps.waiting.pop() is None, "never retried"


def test_an_environment_error_is_not_counted_and_pauses_claiming(steps: Steps) -> None:
    ref = _claimed(steps, "a.log")
    error = {"type": "OSError", "message": "[errno 28] No space left on device",
             "cause": "disk_full"}  # fmt: skip
    for _ in range(5):  # however often: the machine's fault is never the file's
        steps.outcomes.finish(ref, Outcome(Status.ENVIRONMENT, _failed(ref, error)))
        assert steps.waiting.pop() is ref
        ref.attempt += 1
    assert ref.attempt == 1 and ref.held == 5
    pause = steps.outcomes.pause
    assert pause.reason is not None and pause.reason.cause == "disk_full"
    assert pause.counts == {"disk_full": 1}, "one pause, however many files it held"
    assert os.listdir(steps.folders.of(State.FAILED)) == []
    assert steps.outcomes.totals["retried"] == 0


def test_the_pause_probes_with_backoff_and_clears_when_the_disk_has_room(
    steps: Steps,
) -> None:
    pause, folders = steps.outcomes.pause, steps.folders
    huge = 1 << 60  # no disk has this much free: the floor holds
    assert pause.check(folders, huge, now=0.0) is False
    assert pause.reason is not None and pause.reason.cause == "disk_low"
    assert "below the --min-disk-free-mb floor" in pause.reason.message
    assert pause.check(folders, 0, now=0.5) is False, "not before its probe is due"
    assert pause.check(folders, huge, now=1.0) is False, "probed, still low: backs off"
    assert pause.check(folders, 0, now=2.5) is False, "the second probe waits 2 s"
    assert pause.check(folders, 0, now=3.0) is True and pause.reason is None
    assert pause.check(folders, 0, now=3.1) is False, "running, above the floor"


def test_files_held_while_paused_leave_the_next_probe_where_it_was(steps: Steps) -> None:
    # Four workers' files fail on a full disk one after another: the probe still comes a
    # second after the pause, not 30 s later (each file once doubled the back-off).
    pause, folders = Pause(first_s=1.0, max_s=30.0), steps.folders
    full = PauseReason("disk_full", "[errno 28] No space left on device")
    for i in range(6):
        pause.hold(full, now=i / 10)
    assert pause.check(folders, 0, now=0.9) is False, "not before its probe is due"
    assert pause.check(folders, 0, now=1.0) is True and pause.reason is None


def test_the_pause_backs_off_from_its_first_wait_up_to_its_longest(steps: Steps) -> None:
    pause, folders, huge = Pause(first_s=0.1, max_s=0.3), steps.folders, 1 << 60
    assert pause.check(folders, huge, now=0.0) is False  # paused: probes at 0.1, 0.3, 0.6…
    for probe_at in (0.1, 0.3, 0.6):
        assert pause.check(folders, huge, now=probe_at) is False, "probed, still low"
    assert pause.check(folders, 0, now=0.89) is False, "the wait stays at 0.3 s"
    assert pause.check(folders, 0, now=0.9) is True


def _tree(root: Path) -> set[tuple[str, bool]]:
    return {(str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*")}


_PARTS = ["a.log", "sub", "b.log", ".hidden", "x.part", ".a.log.Xy12", "..", ".", "", "nope",
          "\0", "a.log\0", " ", "sub/"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_PARTS), min_size=0, max_size=4).map("/".join))
def test_cancel_acts_only_on_a_claimable_file_it_names(rel: str) -> None:
    """Whatever name an action is given, it moves exactly that regular, claimable file
    waiting in unprocessed/, or refuses and touches nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        folders = Folders(Path(tmp) / "w", Path(tmp) / "r")
        folders.create()
        queued = folders.of(State.QUEUED)
        for name in ("a.log", "sub/b.log", ".hidden", "x.part", ".a.log.Xy12", "sub/.h"):
            (queued / name).parent.mkdir(exist_ok=True)
            (queued / name).write_text("x\n")
        journal = Journal(folders.journal)
        intake = Intake(str(queued), 0.5, ignore_matcher(["*.part"]))
        outcomes = Outcomes(folders, journal, EventBus(), Waiting(), Pause(), max_attempts=3,
                            retry_backoff=1, fsync=False)  # fmt: skip
        claimer = Claimer(folders, journal, intake, outcomes, zero_mtime="fail",
                          empty_files="fail")  # fmt: skip
        before = _tree(folders.root)
        try:
            ref = claimer.reject_queued(rel, "cancelled")
        except (ValueError, FileNotFoundError):
            assert _tree(folders.root) == before, f"{rel!r} was refused but something moved"
        else:
            assert rel in ("a.log", "sub/b.log") and ref.rel == rel
            assert _tree(folders.root) - before == {(f"failed/{rel}", False)} | (
                {("failed/sub", True)} if "/" in rel else set()
            )
            assert before - _tree(folders.root) == {(f"unprocessed/{rel}", False)}
        finally:
            journal.close()


def test_a_name_too_long_for_its_results_fails_at_once_with_a_shortened_summary(
    steps: Steps,
) -> None:
    name = "n" * 250 + ".log"  # fits the folder, but not <name>.json in results/
    steps.drop(name)
    steps.settle_all()
    assert steps.claimer.next() is None
    assert os.listdir(steps.folders.of(State.FAILED)) == [name]
    (summary_name,) = [n for n in os.listdir(steps.folders.results) if not n.startswith(".")]
    assert summary_name.endswith(".log.json") and len(summary_name.encode()) <= 255
    summary = orjson.loads((steps.folders.results / summary_name).read_bytes())
    assert summary["source"] == name and "255-byte limit" in summary["error"]["message"]
    assert summary["uid"][:8] in summary_name, "unique: carries the input's uid"


def test_ignored_files_are_listed_with_why(steps: Steps) -> None:
    queued = steps.folders.of(State.QUEUED)
    for rel in ("x.part", "sub/.rsync.tmp.Ab12", "keep.log"):
        steps.drop(rel)
    steps.settle_all()
    stuck = dict(steps.intake.stuck())
    assert set(stuck) == {"x.part", "sub/.rsync.tmp.Ab12"}
    assert "--ignore-patterns '*.part'" in stuck["x.part"]
    assert "hidden" in stuck["sub/.rsync.tmp.Ab12"]
    (queued / "x.part").unlink()
    steps.intake.scan(str(queued))
    assert dict(steps.intake.stuck()) == {"sub/.rsync.tmp.Ab12": stuck["sub/.rsync.tmp.Ab12"]}


def test_folders_emptied_by_claims_are_removed_once_idle_drop_targets_are_kept(
    steps: Steps,
) -> None:
    queued = steps.folders.of(State.QUEUED)
    for rel in ("batch/deep/a.log", "busy/b.log", "busy/c.log"):
        steps.drop(rel)
    (queued / "target").mkdir()  # made in advance for drops to come: nothing claimed from it
    steps.settle_all()
    claimed = {steps.claimer.next().rel for _ in range(2)}
    assert "batch/deep/a.log" in claimed or len(claimed) == 2
    while steps.claimer.next() is not None:
        pass
    steps.drop("busy/d.log")  # busy/ is being written to again
    for d in ("batch/deep", "batch", "target"):
        os.utime(queued / d, (1, 1))  # idle for long
    steps.intake.scan(str(queued))
    assert not (queued / "batch").exists(), "the emptied tree goes, parents included"
    assert (queued / "target").is_dir(), "a folder nothing was claimed from stays"
    assert (queued / "busy").is_dir(), "not empty: a new file arrived"
