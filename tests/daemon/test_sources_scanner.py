"""The sources' scanner in-process, on a real folder and a real journal: a walk reports
only the files whose version differs from their rows and the rows whose file is gone,
whether a folder's rows are read at once or, past `big_folder`, looked up file by file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.sources import SourceConfig
from daemon.sources.runtime import Runtime, after_seen
from daemon.sources.scanner import ScanDone, Scanner, ScanRequest
from daemon.sources.store import Store
from daemon.watcher import ignore_matcher


def _walk(scanner: Scanner, store: Store, rt: Runtime) -> tuple[list[str], list[str], ScanDone]:
    """One full walk: (paths seen, paths missing, its end); what it saw becomes rows."""
    scanner.request(ScanRequest(rt.config, rt.root))
    seen: list[str] = []
    missing: list[str] = []
    while True:
        batch = scanner.out.get(timeout=30)
        for s in batch.seen:
            store.put(after_seen(store.get(rt.name, s.rel), rt, s, 0.0))
            seen.append(s.rel)
        missing.extend(batch.missing)
        store.flush()
        if batch.done is not None:
            return sorted(seen), sorted(missing), batch.done


@pytest.mark.parametrize("big_folder", [50_000, 2])
def test_a_walk_reports_what_differs_read_at_once_or_file_by_file(
    tmp_path: Path, big_folder: int
) -> None:
    top = tmp_path / "src"
    (top / "sub").mkdir(parents=True)
    names = ["a.log", "b.log", "c.log", "sub/d.log", os.fsdecode(b"sub/\xff.log")]
    for n in names:
        (top / n).write_bytes(os.fsencode(n))
    (top / ".hidden").write_text("never")
    store = Store(tmp_path / "sources.sqlite3")
    scanner = Scanner(store.path, ignore_matcher(()), lambda: None, big_folder=big_folder)
    scanner.start()
    try:
        rt = Runtime(SourceConfig(name="s", path=top), str(top))
        seen, missing, done = _walk(scanner, store, rt)
        assert seen == sorted(names) and missing == [] and done.files == 5
        assert _walk(scanner, store, rt)[:2] == ([], []), "an unchanged walk reported files"

        (top / "b.log").write_text("b, longer now")
        (top / "c.log").unlink()
        (top / "sub" / "d.log").unlink()
        (top / "sub" / "e.log").write_text("new")
        seen, missing, done = _walk(scanner, store, rt)
        assert seen == ["b.log", "sub/e.log"] and missing == ["c.log", "sub/d.log"]
        assert done.files == 4 and done.error is None
    finally:
        scanner.stop()
        store.close()
