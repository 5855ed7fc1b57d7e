"""The watcher reports what settles need, survives its own death, never loses rsync's rename."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from daemon.watcher import Watcher, ignore_matcher
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
    assert ignore_matcher(PATTERNS)(rel) is ignored


@pytest.fixture
def watched(tmp_path: Path):
    events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    w = Watcher(tmp_path, lambda kind, path: events.put((kind, path)), ignore_matcher(PATTERNS))
    w.start()
    yield tmp_path, w, events
    w.close()


def _drain(events: queue.SimpleQueue[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    while not events.empty():
        out.append(events.get())
    return out


def test_rsync_final_rename_from_a_hidden_temp_name_is_reported(watched) -> None:
    root, _, events = watched
    tmp = root / ".data.log.AbC123"
    tmp.write_text("complete\n")
    tmp.rename(root / "data.log")
    seen: list[tuple[str, str]] = []
    wait_until(
        lambda: seen.extend(_drain(events)) or ("file", str(root / "data.log")) in seen,
        10,
        "the rename's destination reported",
    )
    assert not any(".data.log" in p for _, p in seen), "the temp name itself is never reported"


def test_a_dead_observer_is_detected_and_restarted(watched) -> None:
    root, w, events = watched
    assert w.alive()
    for emitter in list(w._observer.emitters):  # simulate the thread dying under churn
        emitter.stop()
        emitter.join(5)
    assert not w.alive()
    w.restart()
    assert w.alive() and w.restarts == 1
    (root / "after.log").write_text("x\n")
    wait_until(
        lambda: ("file", str(root / "after.log")) in _drain(events), 10, "events after restart"
    )


def test_moves_out_of_the_tree_are_not_reported_moves_into_it_are(watched, tmp_path) -> None:
    # Each claim renames a file out of unprocessed/: the inotify mask leaves IN_MOVED_FROM
    # out, so claims cost no event; what arrives by rename is still reported.
    root, _, events = watched
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "in.log").write_text("x\n")
    (root / "leaving.log").write_text("x\n")
    wait_until(lambda: ("closed", str(root / "leaving.log")) in _drain(events), 10, "write seen")
    (root / "leaving.log").rename(outside / "leaving.log")
    (outside / "in.log").rename(root / "in.log")
    seen: list[tuple[str, str]] = []
    wait_until(
        lambda: seen.extend(_drain(events)) or ("file", str(root / "in.log")) in seen,
        10,
        "the move in reported",
    )
    assert all("leaving.log" not in p for _, p in seen), seen
