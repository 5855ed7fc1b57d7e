"""DESIGN invariant 7: bad input gets a clear outcome, loses nothing, never stops the daemon."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Queue, sha256_of, wait_until

pytestmark = pytest.mark.integration


def _failed_reason(queue: Queue, name: str) -> str:
    s = queue.summaries()[name]
    assert s["status"] == "failed", s
    return s["error"]["message"]


def test_each_bad_input_gets_a_clear_outcome_and_the_daemon_keeps_going(
    queue: Queue, start_daemon, tmp_path: Path
) -> None:
    d = start_daemon()
    up = queue.dir("unprocessed")
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read me\n")
    os.mkfifo(up / "pipe.log")
    os.symlink(outside, up / "link-out.log")
    (up / "inside-target.txt.part").write_text("in watch_dir\n")  # ignored pattern
    os.symlink(up / "inside-target.txt.part", up / "link-in.log")
    (up / "binary.log").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    (up / "latin1.log").write_bytes("café\n".encode("latin-1"))
    (up / "empty.log").write_bytes(b"")
    (up / "new\nline.log").write_text("a name with a newline\n")
    (up / "-rf *.log").write_text("a name that looks like flags\n")
    (up / "ünï cödé 名前.log").write_text("unicode name\n")
    zero = up / "partial.log"
    zero.write_text("truncated by an interrupted rsync --partial")
    os.utime(zero, (0, 0))

    expect_failed = {"pipe.log", "link-out.log", "binary.log", "latin1.log", "empty.log",
                     "partial.log"}  # fmt: skip
    expect_processed = {"new\nline.log", "-rf *.log", "ünï cödé 名前.log", "link-in.log"}
    wait_until(
        lambda: (
            set(queue.files("failed")) == expect_failed
            and set(queue.files("processed")) == expect_processed
        ),
        60,
        "every bad input to reach its folder",
    )
    assert "FIFO" in _failed_reason(queue, "pipe.log")
    assert "outside watch_dir" in _failed_reason(queue, "link-out.log")
    assert "binary" in _failed_reason(queue, "binary.log").lower()
    assert "byte offset" in _failed_reason(queue, "latin1.log")
    assert "empty" in _failed_reason(queue, "empty.log")
    assert "mtime is 0" in _failed_reason(queue, "partial.log")
    # The FIFO was moved, never opened (opening it would have blocked the daemon).
    assert stat.S_ISFIFO(os.lstat(queue.dir("failed") / "pipe.log").st_mode)
    # The symlink itself is kept; its outside target untouched.
    assert os.path.islink(queue.dir("failed") / "link-out.log")
    assert outside.read_text() == "do not read me\n"
    # The ignored temp file is still waiting untouched.
    assert queue.files("unprocessed") == ["inside-target.txt.part"]
    # Still alive and working.
    queue.drop("good.log", "fine\n")
    wait_until(lambda: "good.log" in queue.files("processed"), 30, "good file after bad ones")
    assert d.proc.poll() is None


def test_zero_mtime_can_be_accepted(queue: Queue, start_daemon) -> None:
    start_daemon("--zero-mtime", "accept")
    path = queue.dir("unprocessed") / "old.log"
    path.write_text("from 1970\n")
    os.utime(path, (0, 0))
    wait_until(lambda: queue.files("processed") == ["old.log"], 30, "processed")


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "shared"])
def test_file_deleted_after_claim_is_reported_and_nothing_else_is_affected(
    queue: Queue, start_daemon, slow_config: Path, shared: bool
) -> None:
    mode = ("--shared", "--instance", "i0") if shared else ()
    d = start_daemon("--config", str(slow_config), "--workers", "1", *mode)
    queue.drop("doomed.slow", "line\n" * 400)
    d.wait_event("file_started", path="doomed.slow")
    claimed = queue.dir("underprocess") / ("i0" if shared else "")
    (claimed / "doomed.slow").unlink()
    queue.drop("next.log", "next\n")
    d.wait_event("file_vanished", path="doomed.slow")
    wait_until(lambda: queue.files("processed") == ["next.log"], 60, "next file processed")
    assert queue.files("underprocess") == []
    if shared:  # the name it held is free again: a new doomed.slow may have it
        assert not os.listdir(queue.root / ".folderd" / "names")
    assert d.proc.poll() is None


def test_permission_denied_file_is_retried_then_failed_with_the_reason(
    queue: Queue, start_daemon
) -> None:
    # Root reads anything; drop the capabilities that let it, so permissions really apply.
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    d = start_daemon("--max-attempts", "2", prefix=prefix)
    secret = queue.dir("unprocessed") / "secret.log"
    secret.write_text("not for you\n")
    secret.chmod(0o000)
    wait_until(lambda: queue.files("failed") == ["secret.log"], 60, "secret.log failed")
    reason = _failed_reason(queue, "secret.log")
    assert "Permission denied" in reason and "gave up after 2 attempts" in reason
    queue.drop("open.log", "for everyone\n")
    wait_until(lambda: queue.files("processed") == ["open.log"], 30, "next file processed")
    assert d.proc.poll() is None


def test_a_file_truncated_while_it_is_processed_is_retried_and_its_summary_is_true(
    queue: Queue, start_daemon, slow_config: Path
) -> None:
    # Invariant: a summary's size and sha256 describe the bytes that produced the results.
    d = start_daemon("--config", str(slow_config))
    line = "a line of some length\n"
    queue.drop("shrinks.log", line * 400)  # 4 s in flight
    pid = d.wait_event("file_started", path="shrinks.log")["worker_pid"]
    path = queue.dir("underprocess") / "shrinks.log"
    # file_started is the loop handing the job over: truncate once the worker has it open
    wait_until(lambda: _has_open(pid, path), 30, "the worker reading shrinks.log")
    os.truncate(path, len(line) * 100)
    retry = d.wait_event("file_retry_scheduled", path="shrinks.log")
    assert "changed while processed" in retry["error"]
    wait_until(lambda: queue.files("processed") == ["shrinks.log"], 60, "processed")
    summary = queue.summaries()["shrinks.log"]
    assert (summary["lines_in"], summary["size"], summary["attempts"]) == (100, len(line) * 100, 2)
    assert summary["sha256"] == sha256_of(queue.dir("processed") / "shrinks.log")
    assert (queue.results / "shrinks.log.out").read_text() == line * 100


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (its /proc/<pid>/fd links)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds))
    except FileNotFoundError:  # an fd closed between the listing and the look
        return False
