"""Counting the shared folders: files only, hidden names skipped, vanished entries tolerated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.foldercount import count_files


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
