"""Every shell block of the manual is run here, in a scratch copy of the repository, or
says on the line before it why it is not (`<!-- not run: why -->`, docs/development.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import NOT_RUN, ROOT, SHELL, Block, blocks, commands, every_block, pages

SHELL_BLOCKS = every_block(SHELL)
RUN = [b for b in SHELL_BLOCKS if b.not_run is None]
# Left out of the scratch copy: what a command may write (copied or made fresh instead),
# and what it has no business reading.
NOT_LINKED = {"docs", "results", "watch_dir", "build", ".git", ".venv", ".pytest_cache",
              ".ruff_cache", ".hypothesis", "bench"}  # fmt: skip


def _sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the repository a block may run in: the code linked, the manual copied,
    empty results/ and watch_dir/, and `python` the virtualenv's interpreter on PATH."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            (repo / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "docs", repo / "docs")
    (repo / "results").mkdir()
    for state in ("unprocessed", "underprocess", "processed", "failed"):
        (repo / "watch_dir" / state).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path))
    return repo, env


@pytest.mark.parametrize("block", RUN, ids=[b.where for b in RUN])
def test_a_shell_block_runs(block: Block, tmp_path: Path) -> None:
    repo, env = _sandbox(tmp_path)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands(block)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, (
        f"{block.where} exited {done.returncode} (mark it <!-- not run: why --> if it cannot"
        f" run in a test)\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_the_manual_has_blocks_that_run_and_blocks_that_say_why_not() -> None:
    assert len(RUN) >= 4, [b.where for b in RUN]
    assert all(b.not_run for b in SHELL_BLOCKS if b not in RUN)
    assert len(SHELL_BLOCKS) - len(RUN) >= 20


def test_a_marker_is_well_formed_and_stands_before_a_shell_block() -> None:
    """A misspelt marker would quietly make a block run (or a reader think it is not)."""
    loose = re.compile(r"<!--\s*not[ -_]?run", re.IGNORECASE)
    for page in pages():
        lines = page.read_text(encoding="utf-8").split("\n")
        fenced = {b.line - 2 for b in blocks(page) if b.lang in SHELL}  # 0-based line before
        inside = {i for b in blocks(page) for i in range(b.line, b.line + b.text.count("\n"))}
        for i, line in enumerate(lines):
            if loose.search(line) and i not in inside:
                where = f"{page.relative_to(ROOT)}:{i + 1}"
                assert NOT_RUN.match(line.strip()), f"{where}: write <!-- not run: why -->"
                assert i in fenced, f"{where}: a marker is the line just before a shell block"


def test_a_console_block_runs_only_its_prompted_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n<!-- not run: an example -->\n```console\n$ echo hi\nhi\n$ true\n```\n")
    (block,) = blocks(page)
    assert block.not_run == "an example"
    assert commands(block) == "echo hi\ntrue\n"
