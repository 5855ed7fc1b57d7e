"""The sources' scanner in-process, on a real folder and a real journal: a walk reports
only the files whose version differs from their rows and the rows whose file is gone,
whether a folder's rows are read at once or, past `big_folder`, looked up file by file;
ignored names, globs, symlinks, FIFOs, files deleted and back, a file that became a folder."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from config.sources import SourceConfig
from daemon.sources.runtime import Runtime, after_seen
from daemon.sources.scanner import ScanDone, Scanner, ScanRequest
from daemon.sources.store import EntryState, Store
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
        for rel in batch.missing:  # as the loop does: the row says deleted
            e = store.get(rt.name, rel)
            assert e is not None, f"{rel} reported missing without a row"
            store.put(replace(e, state=EntryState.DELETED))
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


@pytest.mark.parametrize("big_folder", [50_000, 2])
@pytest.mark.parametrize("include", [("*",), ("*.log",)])
def test_a_walk_skips_what_it_must_and_sees_files_back_or_turned_into_folders(
    tmp_path: Path, big_folder: int, include: tuple[str, ...]
) -> None:
    top = tmp_path / "src"
    (top / "sub").mkdir(parents=True)
    for n in ("a.log", "b.txt", "x.part", ".hidden.log", "sub/c.log", "sub/d.log"):
        (top / n).write_text(n)
    (top / "link.log").symlink_to(top / "a.log")
    os.mkfifo(top / "fifo.log")
    store = Store(tmp_path / "sources.sqlite3")
    scanner = Scanner(store.path, ignore_matcher(("*.part",)), lambda: None, big_folder)
    scanner.start()
    try:
        rt = Runtime(SourceConfig(name="s", path=top, include=include), str(top))
        wanted = ["a.log", "sub/c.log", "sub/d.log"] + (["b.txt"] if include == ("*",) else [])
        seen, missing, done = _walk(scanner, store, rt)
        assert (seen, missing, done.files) == (sorted(wanted), [], len(wanted))
        assert done.bytes == sum(len(n) for n in wanted)
        assert _walk(scanner, store, rt)[:2] == ([], [])

        (top / "a.log").unlink()
        (top / "sub" / "c.log").unlink()
        (top / "sub" / "c.log").mkdir()  # a file turned into a folder of its name
        (top / "sub" / "c.log" / "in.log").write_text("inner")
        assert _walk(scanner, store, rt)[:2] == (["sub/c.log/in.log"], ["a.log", "sub/c.log"])
        assert _walk(scanner, store, rt)[:2] == ([], []), "a deleted row reported again"
        (top / "a.log").write_text("a.log")  # back, as it was but for its inode and times
        assert _walk(scanner, store, rt)[:2] == (["a.log"], [])
        assert _walk(scanner, store, rt)[:2] == ([], [])
    finally:
        scanner.stop()
        store.close()
