"""Sources through a real daemon: folders watched in place, each new or changed version
processed once, never written to (a read-only bind mount works), deleted files shown so
with their results kept, a failed version failed until the file changes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.sources.runtime import uid_of
from tests.conftest import DaemonProcess, Queue, sha256_of, wait_until
from tests.daemon.sources_helpers import (
    entries,
    journal_state,
    sources_config,
    summary,
    tree,
    version,
    wait_rescans,
    wait_version,
)

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]


@pytest.fixture
def readonly(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a folder to write into, the same folder bind-mounted read-only)."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    done = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"a read-only bind mount needs root: {done.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        yield src, ro
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(ro)], check=True)


def _rewrite(path: Path, data: bytes, keep_mtime: bool = False) -> None:
    """Overwrite `path` in place (same inode); with keep_mtime, its mtime as it was."""
    st = path.stat()
    with path.open("r+b") as f:
        f.write(data)
        f.truncate()
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_read_only_source_new_changed_deleted_recreated(
    queue: Queue, start_daemon: Start, readonly: tuple[Path, Path], tmp_path: Path
) -> None:
    src, ro = readonly
    (src / "sub").mkdir()
    (src / "a.log").write_text("one\n")
    (src / "sub" / "b.log").write_text("two\n")
    (src / ".hidden.log").write_text("never\n")
    (src / "c.part").write_text("never\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "ro", "path": str(ro), "rescan_s": 1}])
    before = tree(src)
    d = start_daemon("--config", str(cfg))
    a1 = wait_version(queue, "ro", "a.log", 1)
    wait_version(queue, "ro", "sub/b.log", 1)
    assert a1["status"] == "processed" and a1["origin"]["source"] == "ro"
    assert (queue.results / "sources/ro/a.log.out").read_text() == "one\n"
    assert summary(queue, "ro", ".hidden.log") is None and summary(queue, "ro", "c.part") is None
    assert tree(src) == before, "folderd wrote in the source"

    _rewrite(src / "a.log", b"one, then more\n")  # a new version: replaces the results
    a2 = wait_version(queue, "ro", "a.log", 2)
    assert a2["uid"] == a1["uid"] and a2["sha256"] == sha256_of(src / "a.log")
    assert (queue.results / "sources/ro/a.log.out").read_text() == "one, then more\n"

    (src / "sub" / "b.log").unlink()  # deleted: shows so, its results stay
    uid = uid_of("ro", "sub/b.log")
    wait_until(lambda: entries(queue, "ro").get("sub/b.log", ("",))[0] == "deleted", 30,
               "b.log deleted")  # fmt: skip
    wait_until(lambda: journal_state(queue, uid) == "missing", 10, "journal says missing")
    assert summary(queue, "ro", "sub/b.log") is not None

    (src / "sub" / "b.log").write_text("two again\n")  # re-created: processed again
    b2 = wait_version(queue, "ro", "sub/b.log", 2)
    assert b2["uid"] == uid and (queue.results / "sources/ro/sub/b.log.out").read_text() == (
        "two again\n"
    )
    wait_until(lambda: len(d.events("source_version_processed")) == 4, 10, "4 versions logged")
    wait_rescans(d)
    assert version(queue, "ro", "a.log") == 2 and version(queue, "ro", "sub/b.log") == 2
    assert len(d.events("source_version_processed")) == 4


def test_renamed_same_mtime_and_inode_reuse(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("x.log", "y.log"):
        (src / name).write_text(f"{name}\n")
    same = time.time_ns()
    for name in ("x.log", "y.log"):  # two files sharing an mtime, to the nanosecond
        os.utime(src / name, ns=(same, same))
    cfg = sources_config(tmp_path / "c.json", [{"name": "s", "path": str(src), "rescan_s": 1}])
    start_daemon("--config", str(cfg))
    wait_version(queue, "s", "x.log", 1)
    wait_version(queue, "s", "y.log", 1)

    (src / "x.log").rename(src / "z.log")  # renamed: a new path, the old one deleted
    wait_version(queue, "s", "z.log", 1)
    wait_until(lambda: entries(queue, "s")["x.log"][0] == "deleted", 30, "x.log deleted")

    st = (src / "y.log").stat()  # inode reuse: same path, same size, same mtime, new bytes
    (src / "y.log").unlink()
    (src / "y.log").write_text("Y.log\n")
    os.utime(src / "y.log", ns=(st.st_atime_ns, st.st_mtime_ns))
    y2 = wait_version(queue, "s", "y.log", 2)
    assert y2["sha256"] == sha256_of(src / "y.log")

    # a file arriving late with an mtime of files processed long ago (`cp -p`, an rsync of
    # old files): found all the same (NIFI-3332 missed those, listing by newest mtime)
    (src / "late.log").write_text("late\n")
    os.utime(src / "late.log", ns=(same, same))
    assert wait_version(queue, "s", "late.log", 1)["sha256"] == sha256_of(src / "late.log")


def test_hashed_source_same_size_and_mtime_and_a_touch(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "h.log").write_text("aaaa\n")
    source = {"name": "h", "path": str(src), "hash": True, "rescan_s": 1}
    cfg = sources_config(tmp_path / "c.json", [source])
    d = start_daemon("--config", str(cfg))
    wait_version(queue, "h", "h.log", 1)
    _rewrite(src / "h.log", b"bbbb\n", keep_mtime=True)  # same size and mtime, new bytes
    h2 = wait_version(queue, "h", "h.log", 2)
    assert h2["sha256"] == sha256_of(src / "h.log")
    assert h2["origin"]["version"]["sha256"] == h2["sha256"]
    wait_until(lambda: len(d.events("source_version_processed")) == 2, 10, "v2 logged")
    os.utime(src / "h.log")  # new metadata, the same bytes: no new version
    wait_rescans(d, 3)
    assert version(queue, "h", "h.log") == 2
    assert len(d.events("source_version_processed")) == 2


def test_failed_stays_failed_until_the_file_changes(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad.log").write_bytes(b"\xff\xfe not utf-8\n")
    (src / "empty.log").write_bytes(b"")  # as in the queue: --empty-files fail (the default)
    cfg = sources_config(tmp_path / "c.json", [{"name": "f", "path": str(src), "rescan_s": 1}])
    d = start_daemon("--config", str(cfg))
    s = wait_version(queue, "f", "bad.log", 1)
    assert s["status"] == "failed"
    empty = wait_version(queue, "f", "empty.log", 1)
    assert empty["status"] == "failed" and empty["error"]["message"] == "empty file (0 bytes)"
    wait_rescans(d)
    assert version(queue, "f", "bad.log") == 1 and entries(queue, "f")["bad.log"][0] == "failed"
    (src / "bad.log").write_text("fixed\n")
    assert wait_version(queue, "f", "bad.log", 2)["status"] == "processed"


@pytest.mark.parametrize("after", ["delete", "move"])
def test_after_success_the_file_is_deleted_or_archived(
    queue: Queue, start_daemon: Start, tmp_path: Path, after: str
) -> None:
    src, archive = tmp_path / "src", tmp_path / "archive"
    (src / "d").mkdir(parents=True)
    (src / "d" / "ok.log").write_text("fine\n")
    (src / "bad.log").write_bytes(b"\xff\n")
    source = {"name": "a", "path": str(src), "after": after}
    if after == "move":
        source["archive"] = str(archive)
    start_daemon("--config", str(sources_config(tmp_path / "c.json", [source])))
    wait_version(queue, "a", "d/ok.log", 1)
    wait_until(lambda: not (src / "d" / "ok.log").exists(), 10, "ok.log gone from the source")
    if after == "move":
        assert (archive / "d" / "ok.log").read_text() == "fine\n"
    assert wait_version(queue, "a", "bad.log", 1)["status"] == "failed"
    assert (src / "bad.log").exists(), "a failed file is never deleted or moved"
    wait_until(lambda: "d/ok.log" not in entries(queue, "a"), 10, "its row gone")


def test_check_config_lists_sources_and_refuses_bad_ones(tmp_path: Path) -> None:
    import sys

    from tests.conftest import ROOT

    good = sources_config(tmp_path / "good.json", [
        {"name": "desk", "path": "/home/u/Desktop", "include": ["*.jpg"], "after": "move",
         "archive": "/srv/done", "hash": True},
    ])  # fmt: skip
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--check-config", "--config",
                          str(good)], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "desk: /home/u/Desktop (*.jpg)" in out.stdout and "moved to /srv/done" in out.stdout
    bad = sources_config(tmp_path / "bad.json", [
        {"name": "x", "path": "/a", "after": "move"}, {"name": "x", "path": "/b", "colour": 1},
    ])  # fmt: skip
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--check-config", "--config",
                          str(bad)], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2
    assert "$.sources[0].archive" in out.stderr and "$.sources[1].colour: unknown key" in out.stderr
    odd = sources_config(tmp_path / "odd.json", [{"name": "o", "path": os.fsdecode(b"/r\xe9")}])
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "--check-config", "--config",
                          str(odd)], capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and "o: /r\\xe9 (*)" in out.stdout, out.stdout  # as shown()
