"""Helpers for the sources tests: a config with sources, and reading what a daemon made of
them (summaries under results/sources/<name>/, rows of the sources' journal)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProcess, Queue, wait_until


def sources_config(
    path: Path,
    sources: list[dict[str, Any]],
    nodes: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Path:
    """A pipeline routing every file to `in` (through `nodes`, else straight to `end`)."""
    config = {
        "routes": [{"start": "in" if nodes else "end"}],
        "nodes": nodes or [],
        "sources": sources,
        **extra,
    }
    path.write_text(json.dumps(config))
    return path


def summary(queue: Queue, source: str, rel: str) -> dict[str, Any] | None:
    try:
        data = json.loads((queue.results / "sources" / source / f"{rel}.json").read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def version(queue: Queue, source: str, rel: str) -> int:
    s = summary(queue, source, rel)
    return s["origin"]["version"]["number"] if s and s.get("origin") else 0


def wait_version(
    queue: Queue, source: str, rel: str, number: int, timeout: float = 30.0
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        s = summary(queue, source, rel)
        if s and s.get("origin", {}).get("version", {}).get("number") == number:
            return s
        return None

    return wait_until(done, timeout, f"{source}:{rel} version {number} processed")


def entries(queue: Queue, source: str) -> dict[str, tuple[str, int]]:
    """path -> (state, versions processed) of every row of `source`."""
    db = queue.root / ".folderd" / "sources.sqlite3"
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT path, state, version FROM entries WHERE source = ?", (source,))
        return {os.fsdecode(p): (s, v) for p, s, v in rows}


def journal_state(queue: Queue, uid: str) -> str | None:
    with sqlite3.connect(f"file:{queue.root / '.folderd' / 'journal.sqlite3'}?mode=ro",
                         uri=True) as conn:  # fmt: skip
        row = conn.execute("SELECT state FROM files WHERE uid = ?", (uid,)).fetchone()
    return row[0] if row else None


def tree(path: Path) -> dict[str, tuple[int, int]]:
    """rel -> (size, mtime_ns) of everything under `path`: to see that nothing changed."""
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_size, st.st_mtime_ns)
    return out


def wait_rescans(daemon: DaemonProcess, n: int = 2, timeout: float = 30.0) -> None:
    """Wait for `n` more walks of the sources (what they should not find, they did not)."""
    walks = len(daemon.events("source_scanned"))
    wait_until(lambda: len(daemon.events("source_scanned")) >= walks + n, timeout,
               f"{n} more walks")  # fmt: skip
