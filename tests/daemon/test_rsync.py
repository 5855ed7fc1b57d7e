"""Real rsync into unprocessed/: nothing partial is ever claimed, paths are kept."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Queue, sha256_of, wait_until

pytestmark = pytest.mark.integration

BIG_MB = 50


def _make_tree(src: Path) -> dict[str, str]:
    """A folder tree with one 50 MB log and small files at several depths: rel -> sha256."""
    (src / "big").mkdir(parents=True)
    line = "2026-11-22 10:00:00 [INFO] API: request served in 12 ms from 10.0.0.1\n"
    chunk = line * (1024 * 1024 // len(line) + 1)
    with (src / "big" / "huge.log").open("w") as f:
        for _ in range(BIG_MB):
            f.write(chunk[: 1024 * 1024 - (1024 * 1024 % len(line))])
    for depth in ("a", "a/b", "a/b/c"):
        (src / depth).mkdir(parents=True, exist_ok=True)
        for i in range(3):
            (src / depth / f"small {i}.log").write_text(f"{depth} {i}\n" * 100)
    (src / "top.log").write_text("top\n")
    return {str(p.relative_to(src)): sha256_of(p) for p in src.rglob("*") if p.is_file()}


@pytest.mark.parametrize("mode", ["temp-files", "inplace"])
def test_rsync_tree_with_bwlimit_is_claimed_only_when_complete(
    queue: Queue, start_daemon, tmp_path: Path, mode: str
) -> None:
    if shutil.which("rsync") is None:
        pytest.fail("rsync is not installed (.ci/run installs it)")
    src = tmp_path / "src"
    expected = _make_tree(src)
    d = start_daemon("--settle", "0.5")
    cmd = ["rsync", "-r", "-t", "--bwlimit=20000", f"{src}/", f"{queue.dir('unprocessed')}/"]
    if mode == "inplace":
        cmd.insert(1, "--inplace")
    subprocess.run(cmd, check=True, timeout=120)
    wait_until(
        lambda: sorted(queue.files("processed")) == sorted(expected), 120, "the tree processed"
    )
    assert queue.files("failed") == []
    summaries = queue.summaries()
    for rel, digest in expected.items():
        # What the worker read is the complete source file: nothing was claimed early.
        assert summaries[rel]["sha256"] == digest, rel
        assert sha256_of(queue.dir("processed") / rel) == digest, rel
        assert (queue.results / f"{rel}.json").exists()
    claimed = [e["path"] for e in d.events("file_claimed")]
    assert sorted(claimed) == sorted(expected), "each file claimed once, no temp file claimed"


@pytest.mark.serial
def test_files_rsync_renames_in_are_claimed_without_the_settle_window(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"r{i}.log").write_text(f"line {i}\n" * 1000)
    d = start_daemon("--settle", "10")
    subprocess.run(["rsync", "-r", f"{src}/", f"{queue.dir('unprocessed')}/"], check=True)
    # Far sooner than the 10 s window: rsync's final rename says each file is complete.
    wait_until(lambda: len(queue.files("processed")) == 5, 5, "processed at once")
    for i in range(5):
        assert queue.summaries()[f"r{i}.log"]["sha256"] == sha256_of(src / f"r{i}.log")
    assert d.proc.poll() is None


def test_a_file_renamed_in_and_still_written_waits_the_full_window(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    d = start_daemon("--settle", "1.5")
    outside = tmp_path / "staging.log"
    with outside.open("w") as f:  # a writer that renames a file it is still writing
        f.write("first\n")
        f.flush()
        outside.rename(queue.dir("unprocessed") / "busy.log")
        for i in range(10):
            f.write(f"more {i}\n")
            f.flush()
            assert not d.events("file_claimed"), f"claimed mid-write, after {i} appends"
            time.sleep(0.1)
    wait_until(lambda: queue.files("processed") == ["busy.log"], 30, "processed once done")
    assert queue.summaries()["busy.log"]["lines_in"] == 11


@pytest.mark.serial
def test_a_directory_moved_in_has_its_files_claimed_at_once(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    batch = tmp_path / "batch"
    (batch / "deep").mkdir(parents=True)
    for rel in ("a.log", "deep/b.log"):
        (batch / rel).write_text(f"{rel}\n")
    (queue.dir("unprocessed") / "inbox").mkdir()
    start_daemon("--settle", "10")
    batch.rename(queue.dir("unprocessed") / "inbox" / "batch")
    want = ["inbox/batch/a.log", "inbox/batch/deep/b.log"]  # one `mv`, same filesystem
    wait_until(lambda: sorted(queue.files("processed")) == want, 5, "processed at once")
