"""The manual's fenced blocks, read the way the doc tests need them.

A block is a fence (```` ```lang ````) in a page of `docs/`. The line just before a shell
block may say it is not run: `<!-- not run: why -->` (the convention in
docs/development.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SHELL = ("sh", "console")
NOT_RUN = re.compile(r"^<!-- not run: (?P<why>\S.*?) -->$")
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    before: str  # the line just before the fence ("" at the top of a page)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        """Why this block is not run, when the line before it says so."""
        match = NOT_RUN.match(self.before.strip())
        return match["why"] if match else None


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def blocks(page: Path) -> list[Block]:
    """Every fenced block of `page`, in order."""
    lines = page.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent = opening["indent"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        before = lines[i - 1] if i > 0 else ""
        found.append(Block(page, i + 1, opening["lang"], "\n".join(body) + "\n", before))
        i = end + 1
    return found


def every_block(lang: str | tuple[str, ...]) -> list[Block]:
    langs = (lang,) if isinstance(lang, str) else lang
    return [b for page in pages() for b in blocks(page) if b.lang in langs]


def commands(block: Block) -> str:
    """The script a shell block runs: all of an `sh` block; of a `console` block, the lines
    after a `$ ` prompt."""
    if block.lang == "console":
        return "".join(line[2:] + "\n" for line in block.text.splitlines() if line[:2] == "$ ")
    return block.text
