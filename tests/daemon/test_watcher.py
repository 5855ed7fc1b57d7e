"""The watcher reports what settles need, survives its own death, never loses rsync's rename."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest
from watchdog.observers.api import EventEmitter

from daemon.watcher import Change, FileChange, Watcher, ignore_matcher
from tests.conftest import wait_until

PATTERNS = ("*.part", "*.tmp", "*.crdownload", "*.swp", "~*")


@pytest.mark.parametrize(
    ("rel", "ignored"),
    [
        ("app.log", False),
        ("sub/dir/app.log", False),
        (".app.log.Xy12Zq", True),  # rsync's temp name
        ("sub/.hidden/app.log", True),  # anything under a hidden folder
        ("big.iso.part", True),
        ("download.crdownload", True),
        ("~lock.docx", True),
        ("notes.tmp", True),
        ("report~1.log", False),  # folderd's own suffix is not a temp pattern
    ],
)
def test_ignore_matcher(rel: str, ignored: bool) -> None:
    assert bool(ignore_matcher(PATTERNS)(rel)) is ignored


@pytest.fixture
def watched(tmp_path: Path):
    events: queue.SimpleQueue[FileChange] = queue.SimpleQueue()
    w = Watcher(tmp_path, events.put, ignore_matcher(PATTERNS))
    w.start()
    yield tmp_path, w, events
    w.close()


def _drain(events: queue.SimpleQueue[FileChange]) -> list[FileChange]:
    out = []
    while not events.empty():
        out.append(events.get())
    return out


def test_rsync_final_rename_from_a_hidden_temp_name_is_reported(watched) -> None:
    root, _, events = watched
    tmp = root / ".data.log.AbC123"
    tmp.write_text("complete\n")
    tmp.rename(root / "data.log")
    seen: list[FileChange] = []
    wait_until(
        lambda: (
            seen.extend(_drain(events))
            or FileChange(Change.RENAMED, str(root / "data.log")) in seen
        ),
        10,
        "the rename's destination reported",
    )
    assert not any(".data.log" in c.path for c in seen), "the temp name itself is never reported"


def test_a_dead_observer_is_detected_and_restarted(watched) -> None:
    root, w, events = watched
    assert w.alive()
    emitters = [  # its threads, as any thread of the process is found
        t for t in threading.enumerate()
        if isinstance(t, EventEmitter) and t.watch.path == str(root)
    ]  # fmt: skip
    assert emitters
    for emitter in emitters:  # simulate the thread dying under churn
        emitter.stop()
        emitter.join(5)
    assert not w.alive()
    w.restart()
    assert w.alive() and w.restarts == 1
    (root / "after.log").write_text("x\n")
    wait_until(
        lambda: FileChange(Change.CHANGED, str(root / "after.log")) in _drain(events),
        10,
        "events after restart",
    )


def test_moves_out_of_the_tree_are_not_reported_moves_into_it_are(watched, tmp_path) -> None:
    # Each claim renames a file out of unprocessed/: the inotify mask leaves IN_MOVED_FROM
    # out, so claims cost no event; what arrives by rename is still reported.
    root, _, events = watched
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "in.log").write_text("x\n")
    (root / "leaving.log").write_text("x\n")
    wait_until(
        lambda: FileChange(Change.CLOSED, str(root / "leaving.log")) in _drain(events),
        10,
        "write seen",
    )
    (root / "leaving.log").rename(outside / "leaving.log")
    (outside / "in.log").rename(root / "in.log")
    seen: list[FileChange] = []
    wait_until(
        lambda: (
            seen.extend(_drain(events)) or FileChange(Change.RENAMED, str(root / "in.log")) in seen
        ),
        10,
        "the move in reported",
    )
    assert all("leaving.log" not in c.path for c in seen), seen
