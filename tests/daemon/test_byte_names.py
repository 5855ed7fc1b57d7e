"""Names are bytes: a name that is not UTF-8 (rsync from a Latin-1 host, an SMB share, an old
tarball) is claimed, processed, journalled, shown and downloaded like any other, and never
stops the daemon (DESIGN: "Names are bytes")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from formats.names import parsed, shown
from tests.conftest import ROOT, Queue, sha256_of, wait_until

pytestmark = pytest.mark.integration

BAD = os.fsdecode(b"bad\xff.log")  # what os.listdir gives for the bytes b"bad\xff.log"


def _drop(queue: Queue, name: str, text: str) -> None:
    path = queue.dir("unprocessed") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.rename(path)


def _summary_of(queue: Queue, name: str) -> dict:
    return json.loads((queue.results / f"{name}.json").read_bytes())


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "shared"])
def test_a_name_that_is_not_utf8_is_processed_beside_the_others(
    queue: Queue, start_daemon, shared: bool
) -> None:
    _drop(queue, BAD, "2024-01-01 12:00:00 ERROR latin-1 host\n")
    _drop(queue, "good.log", "2024-01-01 12:00:00 INFO fine\n")
    _drop(queue, os.fsdecode(b"sub\xe9/inner\xfe.log"), "in a folder whose name is not UTF-8\n")
    d = start_daemon(*(("--shared", "--instance", "i0") if shared else ()))
    inner = os.fsdecode(b"sub\xe9/inner\xfe.log")
    wait_until(
        lambda: set(queue.files("processed")) == {BAD, "good.log", inner}, 30, "all processed"
    )
    summary = _summary_of(queue, BAD)
    assert summary["status"] == "processed"
    assert summary["source"] == "bad\\xff.log"  # the shown form: JSON carries it
    assert summary["sha256"] == sha256_of(queue.dir("processed") / BAD)
    assert summary["output_files"]
    for out in summary["output_files"]:  # each shown name leads back to its real file
        assert (queue.results / parsed(out)).exists(), out
    assert _summary_of(queue, inner)["source"] == "sub\\xe9/inner\\xfe.log"
    ev = d.wait_event("file_processed", path="bad\\xff.log")  # logs carry the shown form
    assert ev["state"] == "processed"
    assert d.proc.poll() is None


def test_a_restart_and_a_drain_with_such_names_queued_work(queue: Queue, start_daemon) -> None:
    # The defect: the claim's journal write raised, the daemon exited 1 at every start.
    _drop(queue, BAD, "one\n")
    _drop(queue, "good.log", "two\n")
    d = start_daemon("--drain", wait=False)
    assert d.wait_exit(60) == 0, d.output()[-3000:]
    assert set(queue.files("processed")) == {BAD, "good.log"}
    _drop(queue, os.fsdecode(b"again\x80.log"), "three\n")
    d = start_daemon()
    wait_until(lambda: os.fsdecode(b"again\x80.log") in queue.files("processed"), 30, "processed")
    assert shown(os.fsdecode(b"again\x80.log")) == "again\\x80.log"


def test_one_file_with_such_a_name_prints_its_summary(tmp_path: Path) -> None:
    path = os.path.join(os.fsencode(tmp_path), b"one\xfe.log")
    with open(path, "wb") as f:
        f.write(b"2024-01-01 12:00:00 WARN x\n")
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--input", os.fsdecode(path),
         "--results-dir", str(tmp_path / "results")],
        capture_output=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert json.loads(run.stdout)["source"] == "one\\xfe.log"
