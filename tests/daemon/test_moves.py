"""Names never collide; transitions only along the table; the journal follows the folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.journal import Journal
from daemon.moves import admit, free_name, numbered, transition
from daemon.states import FileRef, Folders, State


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("app.log", "app~1.log"),
        ("sub/dir/app.log", "sub/dir/app~1.log"),
        ("x.log.gz", "x~1.log.gz"),
        ("app.2026.log", "app.2026~1.log"),
        ("noext", "noext~1"),
        ("a.gz", "a~1.gz"),
    ],
)
def test_numbered_keeps_the_extension_routing_relies_on(rel: str, expected: str) -> None:
    assert numbered(rel, 1) == expected


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    f = Folders(tmp_path / "w", tmp_path / "r")
    f.create()
    return f


def test_claim_name_avoids_every_folder_and_other_inputs_summaries(folders: Folders) -> None:
    (folders.of(State.PROCESSED) / "a.log").write_text("old")
    assert free_name(folders, State.CLAIMED, "a.log", "uid-new") == "a~1.log"
    (folders.of(State.FAILED) / "a~1.log").write_text("old")
    (folders.results / "a~2.log.json").write_text('{"uid": "someone-else"}')
    assert free_name(folders, State.CLAIMED, "a.log", "uid-new") == "a~3.log"
    # ...but its own earlier summary (a re-run after a crash) is not a collision.
    (folders.results / "b.log.json").write_text('{"uid": "uid-b"}')
    assert free_name(folders, State.CLAIMED, "b.log", "uid-b") == "b.log"


def test_transition_renames_journals_and_logs(folders: Folders) -> None:
    journal = Journal(folders.meta / "journal.sqlite3")
    (folders.of(State.QUEUED) / "sub").mkdir()
    (folders.of(State.QUEUED) / "sub" / "x.log").write_text("x\n")
    ref = FileRef("u1", "sub/x.log", State.QUEUED, 1, "sub/x.log")
    journal.add(ref)
    with capture_logs() as logs:
        transition(folders, journal, ref, State.CLAIMED)
    assert (folders.of(State.CLAIMED) / "sub" / "x.log").read_text() == "x\n"
    assert (ref.state, ref.rel) == (State.CLAIMED, "sub/x.log")
    assert logs[0]["event"] == "file_claimed"
    assert (logs[0]["from"], logs[0]["to"], logs[0]["attempt"]) == (
        "unprocessed",
        "underprocess",
        1,
    )
    transition(folders, journal, ref, State.PROCESSED)
    assert not (folders.of(State.CLAIMED) / "sub").exists(), "folderd tidies its own folders"
    assert (folders.of(State.QUEUED) / "sub").is_dir(), "but never the drop folder"
    journal.flush()
    assert journal.find(State.PROCESSED, "sub/x.log").uid == "u1"


def test_a_transition_outside_the_table_is_refused(folders: Folders) -> None:
    ref = FileRef("u", "a.log", State.PROCESSED, 1, "a.log")
    with pytest.raises(ValueError, match="no transition processed -> underprocess"):
        transition(folders, None, ref, State.CLAIMED)


def test_state_folders_on_different_filesystems_are_refused(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    from daemon.errors import DaemonError

    root = tmp_path / "w"
    root.mkdir()
    other = Path("/dev/shm") / f"folderd-test-{tmp_path.name}"
    other.mkdir(exist_ok=True)
    (root / "processed").symlink_to(other)
    try:
        with pytest.raises(DaemonError, match="different filesystems"):
            Folders(root, tmp_path / "r").create()
    finally:
        other.rmdir()


def test_an_upload_is_admitted_under_a_free_name_and_only_from_the_upload_folder(
    folders: Folders,
) -> None:
    folders.uploads.mkdir()
    (folders.of(State.QUEUED) / "report.csv").write_text("taken\n")
    staged = folders.uploads / "abc.part"
    staged.write_text("new\n")
    with capture_logs() as logs:
        assert admit(folders, staged, "report.csv") == "report~1.csv"
    assert (folders.of(State.QUEUED) / "report~1.csv").read_text() == "new\n"
    assert not staged.exists()
    assert [e["event"] for e in logs] == ["file_admitted"]
    elsewhere = folders.root / "x.part"
    elsewhere.write_text("x\n")
    with pytest.raises(ValueError, match="not staged"):
        admit(folders, elsewhere, "x.csv")
    assert elsewhere.exists()


def test_missing_is_a_journal_state_with_no_folder(folders: Folders) -> None:
    with pytest.raises(ValueError, match="no folder"):
        folders.of(State.MISSING)
    assert State.MISSING not in folders.dirs


def test_a_peer_making_the_destination_folder_mid_move_is_no_vanished_file(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared mode: two instances' first files of sub/ reach processed/ at once. Ours
    fails (no processed/sub/ yet), the peer's makes the folder, then ours looks: the file
    is still in underprocess/, so it is moved, not given up as vanished."""
    (folders.of(State.CLAIMED) / "sub").mkdir()
    (folders.of(State.CLAIMED) / "sub" / "x.log").write_text("x\n")
    real_rename = os.rename

    def rename_raced_by_a_peer(src: str, dst: str) -> None:
        try:
            real_rename(src, dst)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(dst), exist_ok=True)  # the peer, just too late
            raise

    monkeypatch.setattr(os, "rename", rename_raced_by_a_peer)
    ref = FileRef("u1", "sub/x.log", State.CLAIMED, 1, "sub/x.log")
    transition(folders, None, ref, State.PROCESSED)
    assert (folders.of(State.PROCESSED) / "sub" / "x.log").read_text() == "x\n"
    assert ref.state is State.PROCESSED


def test_a_file_gone_from_underprocess_is_reported_gone(folders: Folders) -> None:
    ref = FileRef("u1", "sub/gone.log", State.CLAIMED, 1, "sub/gone.log")
    with pytest.raises(FileNotFoundError):
        transition(folders, None, ref, State.PROCESSED)
    assert not (folders.of(State.PROCESSED) / "sub").exists()
