"""Sources attacked through a real daemon: a file still growing is read once, whole; a
source's folder replaced by another folder, or by a file, then a folder again, or a file
from the start; a file replaced by a folder of the same name (and back); FIFOs and
symlinks never opened; an archive that is a file (`after: move` cannot be done), one
inside the source, one on another filesystem; a queued file holding the results name a
source's file would take; a name too long for its results."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.sources.runtime import uid_of
from tests.conftest import DaemonProcess, Queue, sha256_of, wait_until
from tests.daemon.sources_helpers import (
    entries,
    journal_state,
    sources_config,
    summary,
    version,
    wait_rescans,
    wait_version,
)
from tests.daemon.test_environment import tmpfs  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]


@pytest.mark.serial  # a writer that must not stall for the settle window (1 s)
@pytest.mark.parametrize("hashed", [False, True])
def test_a_file_still_growing_is_processed_once_whole(
    queue: Queue, start_daemon: Start, tmp_path: Path, hashed: bool
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    source = {"name": "g", "path": str(src), "rescan_s": 0.3, "hash": hashed}
    cfg = sources_config(tmp_path / "c.json", [source])
    d = start_daemon("--config", str(cfg), "--settle", "1")
    stop = threading.Event()
    lines = 0

    def grow() -> None:  # a line every 0.1 s for 3 s: never still for a settle window
        nonlocal lines
        with (src / "grow.log").open("a") as f:
            while not stop.is_set() and lines < 30:
                f.write(f"line {lines}\n")
                f.flush()
                lines += 1
                time.sleep(0.1)

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        writer.join(30)
    finally:
        stop.set()
    s = wait_version(queue, "g", "grow.log", 1)
    assert s["lines_in"] == lines == 30 and s["sha256"] == sha256_of(src / "grow.log")
    wait_rescans(d, 3)
    assert len(d.events("source_version_started")) == 1, "read before it was whole"
    assert version(queue, "g", "grow.log") == 1


def test_a_source_folder_replaced_by_another_and_by_a_file(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "old.log").write_text("old\n")
    (src / "kept.log").write_text("kept\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "r", "path": str(src), "rescan_s": 3600}])
    d = start_daemon("--config", str(cfg))  # no rescans: the watcher and the folder checks
    wait_version(queue, "r", "old.log", 1)
    wait_version(queue, "r", "kept.log", 1)

    shutil.rmtree(src)  # replaced by another folder (its files deleted: rm -r deletes them)
    src.mkdir()
    (src / "kept.log").write_text("kept\n")  # the same bytes, but another file: a new version
    (src / "new.log").write_text("new\n")
    wait_version(queue, "r", "new.log", 1)
    wait_version(queue, "r", "kept.log", 2)
    wait_until(lambda: entries(queue, "r").get("old.log") == ("deleted", 1), 30, "old deleted")

    aside = tmp_path / "aside"  # replaced by a file (an unmount leaves the mount point; a
    src.rename(aside)  # tool may swap folders): the source stops, nothing marked deleted
    src.write_text("a file where the folder was\n")
    d.wait_event("source_unavailable", source="r")
    assert entries(queue, "r")["new.log"] == ("done", 1)
    src.unlink()
    aside.rename(src)
    (src / "back.log").write_text("back\n")
    wait_version(queue, "r", "back.log", 1)
    assert {rel: s for rel, (s, _) in entries(queue, "r").items()} == {
        "old.log": "deleted", "kept.log": "done", "new.log": "done", "back.log": "done"
    }  # fmt: skip
    assert len(d.events("source_available")) >= 1
    assert summary(queue, "r", "old.log") is not None, "a deleted file's results are kept"


def test_a_file_replaced_by_a_folder_of_its_name_and_back(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.log").write_text("a file\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "x", "path": str(src), "rescan_s": 1}])
    d = start_daemon("--config", str(cfg))
    wait_version(queue, "x", "x.log", 1)
    (src / "x.log").unlink()
    (src / "x.log").mkdir()  # a folder where the file was
    (src / "x.log" / "in.log").write_text("inside\n")
    wait_version(queue, "x", "x.log/in.log", 1)
    wait_until(lambda: entries(queue, "x")["x.log"] == ("deleted", 1), 30, "x.log deleted")
    assert journal_state(queue, uid_of("x", "x.log")) == "missing"
    assert (queue.results / "sources/x/x.log.out").read_text() == "a file\n"
    assert (queue.results / "sources/x/x.log/in.log.out").read_text() == "inside\n"

    shutil.rmtree(src / "x.log")  # and a file again: a new version of the old path
    (src / "x.log").write_text("a file again\n")
    assert wait_version(queue, "x", "x.log", 2)["status"] == "processed"
    wait_until(lambda: entries(queue, "x")["x.log/in.log"][0] == "deleted", 30, "in.log gone")
    assert d.proc.poll() is None


def test_fifos_and_symlinks_are_never_opened_and_a_blocked_archive_keeps_the_file(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (outside / "secret.log").write_text("never read\n")
    os.mkfifo(src / "pipe.log")  # opening it would block a reader for ever
    (src / "link.log").symlink_to(outside / "secret.log")
    (src / "linkdir").symlink_to(outside, target_is_directory=True)
    (src / "ok.log").write_text("fine\n")
    archive = tmp_path / "archive"
    archive.write_text("a file where the archive folder should be\n")
    source = {"name": "f", "path": str(src), "rescan_s": 0.5, "after": "move",
              "archive": str(archive)}  # fmt: skip
    d = start_daemon("--config", str(sources_config(tmp_path / "c.json", [source])))
    wait_version(queue, "f", "ok.log", 1)
    failed = d.wait_event("source_after_failed", path="ok.log")
    assert (src / "ok.log").read_text() == "fine\n", "the file must stay where it is"
    assert "after move" in failed["error"]
    wait_rescans(d)
    assert set(entries(queue, "f")) == {"ok.log"}
    for name in ("pipe.log", "link.log", "linkdir/secret.log"):
        assert summary(queue, "f", name) is None, name
    assert version(queue, "f", "ok.log") == 1, "a failed after-action ran the version again"


def test_a_source_never_overwrites_a_queued_files_results_of_the_same_name(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cfg = sources_config(tmp_path / "c.json", [{"name": "s", "path": str(src), "rescan_s": 1}])
    d = start_daemon("--config", str(cfg))
    queue.drop("sources/s/a.log", "from the queue\n")  # its results: results/sources/s/a.log.*
    wait_until(lambda: queue.files("processed") == ["sources/s/a.log"], 30, "queued file done")
    theirs = json.loads((queue.results / "sources/s/a.log.json").read_text())
    (src / "a.log").write_text("from the source\n")
    d.wait_event("source_version_processed", path="a.log")
    again = json.loads((queue.results / "sources/s/a.log.json").read_text())
    assert again["uid"] == theirs["uid"], "the source overwrote the queued file's summary"
    assert (queue.results / "sources/s/a.log.out").read_text() == "from the queue\n"
    ours = json.loads((queue.results / "sources/s/a~1.log.json").read_text())
    assert ours["uid"] == uid_of("s", "a.log") and ours["origin"]["path"] == "a.log"
    assert (queue.results / "sources/s/a~1.log.out").read_text() == "from the source\n"

    (src / "a.log").write_text("from the source, changed\n")  # its next version: same name
    wait_until(lambda: len(d.events("source_version_processed")) == 2, 30, "version 2")
    ours = json.loads((queue.results / "sources/s/a~1.log.json").read_text())
    assert ours["origin"]["version"]["number"] == 2
    assert (queue.results / "sources/s/a~1.log.out").read_text() == "from the source, changed\n"
    assert not (queue.results / "sources/s/a~2.log.json").exists()


def test_a_name_too_long_for_its_results_fails_alone_with_its_reason(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    long = "l" * 250 + ".log"  # 254 bytes: `<name>.json` would pass the 255-byte limit
    (src / long).write_text("long\n")
    (src / "short.log").write_text("short\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "t", "path": str(src), "rescan_s": 1}])
    d = start_daemon("--config", str(cfg))
    wait_version(queue, "t", "short.log", 1)
    failed = d.wait_event("source_version_failed", path=long)
    assert "rename it shorter" in failed["error"]
    wait_until(lambda: entries(queue, "t").get(long) == ("failed", 1), 10, "recorded failed")
    (summary_path,) = (queue.results / "sources/t").glob("l*~*.log.json")
    assert json.loads(summary_path.read_text())["origin"]["path"] == long
    wait_rescans(d)
    assert len(d.events("source_version_started")) == 2, "the long name ran again"
    assert d.events("queue_paused") == []


def test_a_source_path_that_is_a_file_waits_until_it_is_a_folder(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.write_text("a file, not a folder\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "p", "path": str(src), "rescan_s": 1}])
    d = start_daemon("--config", str(cfg))
    gone = d.wait_event("source_unavailable", source="p")
    assert gone["reason"] == "not a folder"
    src.unlink()
    src.mkdir()
    (src / "now.log").write_text("now\n")
    wait_version(queue, "p", "now.log", 1)
    d.wait_event("source_available", source="p")


def test_an_archive_inside_the_source_is_never_walked(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.log").write_text("a\n")
    source = {"name": "i", "path": str(src), "rescan_s": 0.5, "after": "move",
              "archive": str(src / "done")}  # fmt: skip
    d = start_daemon("--config", str(sources_config(tmp_path / "c.json", [source])))
    wait_until(lambda: (src / "done" / "a.log").exists(), 30, "a.log archived in the source")
    (src / "b.log").write_text("b\n")
    wait_until(lambda: (src / "done" / "b.log").exists(), 30, "b.log archived in the source")
    wait_rescans(d)
    assert len(d.events("source_version_started")) == 2, "an archived file was processed"
    assert entries(queue, "i") == {}


def test_an_archive_on_another_filesystem_gets_the_whole_file(
    queue: Queue,
    start_daemon: Start,
    tmp_path: Path,
    tmpfs: Callable[[Path, str], None],  # noqa: F811
) -> None:
    src, archive = tmp_path / "src", tmp_path / "archive"
    (src / "sub").mkdir(parents=True)
    data = os.urandom(3 << 20)
    (src / "sub" / "big.bin").write_bytes(data)
    tmpfs(archive, "16m")  # a rename cannot cross: copied, made durable, then removed
    source = {"name": "x", "path": str(src), "after": "move", "archive": str(archive),
              "routes": [{"start": "end", "reader": {"type": "none"}}]}  # fmt: skip
    d = start_daemon("--config", str(sources_config(tmp_path / "c.json", [source])))
    moved = d.wait_event("source_file_archived", path="sub/big.bin")
    assert moved["to_path"] == str(archive / "sub" / "big.bin")
    assert (archive / "sub" / "big.bin").read_bytes() == data
    assert not (src / "sub" / "big.bin").exists()
    assert sorted(p.name for p in (archive / "sub").iterdir()) == ["big.bin"], "a copy's temp left"
