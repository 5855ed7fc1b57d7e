"""Real rsync into unprocessed/: nothing partial is ever claimed, paths are kept."""

from __future__ import annotations

import shutil
import subprocess
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
