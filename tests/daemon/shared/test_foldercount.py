"""Counting the shared folders: files only, hidden names skipped, vanished entries tolerated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.shared.foldercount import count_files
from tests.conftest import ROOT


def test_counts_files_below_a_folder_and_skips_hidden_names(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".folderd-upload").mkdir()
    for rel in ("x.log", "a/y.log", "a/b/z.log", ".part-x", "a/.hidden", ".folderd-upload/u"):
        (tmp_path / rel).write_text("x")
    os.symlink(tmp_path / "a", tmp_path / "link")  # a symlink is a file: never followed
    assert count_files(tmp_path) == 4


def test_a_folder_gone_mid_walk_counts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "f").write_text("x")
    real = os.scandir

    def scandir(path: str) -> object:
        if path.endswith("sub"):
            raise FileNotFoundError(path)  # a peer renamed it between listing and opening
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert count_files(tmp_path) == 1
    assert count_files(tmp_path / "missing") == 0


def test_a_sub_folder_it_may_not_read_is_skipped_and_the_rest_counted(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "hidden.log").write_text("x")
    (tmp_path / "open.log").write_text("x")
    (tmp_path / "private").chmod(0o000)
    # Root reads anything: drop the capabilities that let it, so the mode really applies.
    prefix = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    )
    code = (
        "import sys; from daemon.shared.foldercount import count_files; "
        "print(count_files(sys.argv[1]))"
    )
    try:
        out = subprocess.run([*prefix, sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                             capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    finally:
        (tmp_path / "private").chmod(0o755)
    assert out.stdout.strip() == "1"
