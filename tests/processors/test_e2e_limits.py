"""End to end through the real daemon: input that expands fails cleanly, leaving no outputs.

`python main.py --drain` on a queue holding a file of one line longer than the configured
limit, a gzip bomb in miniature, and an ordinary gzipped log beside them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.processors.pipeline_helpers import ROOT, drain

MIB = 1 << 20
CONFIG = {"reader": {"max_line_bytes": MIB, "max_decompressed_mb": 2}}
LOG = "2026-11-22 10:00:00 [INFO] API: up\n2026-11-22 10:00:01 [ERROR] DB: down\n"


@pytest.mark.integration
def test_a_long_line_and_a_gzip_bomb_fail_with_their_reason(tmp_path: Path) -> None:
    watch, results = tmp_path / "watch", tmp_path / "results"
    inbox = watch / "unprocessed"
    inbox.mkdir(parents=True)
    (inbox / "one_line.log").write_bytes(b"x" * (3 * MIB))  # one line, no end, 3 MiB
    (inbox / "bomb.log.gz").write_bytes(gzip.compress((b"0" * 63 + b"\n") * (8 * MIB // 64)))
    (inbox / "app.log.gz").write_bytes(gzip.compress(LOG.encode() * 1000))
    drain(watch, results, CONFIG, tmp_path)

    def summary(name: str) -> dict:
        return json.loads((results / f"{name}.json").read_text())

    long_line = summary("one_line.log")
    assert long_line["status"] == "failed"
    assert long_line["error"]["type"] == "LineTooLong"
    assert (
        long_line["error"]["message"]
        == "line 1 is longer than 1048576 bytes (reader.max_line_bytes)"
    )
    assert long_line["error"]["line"] == 1
    bomb = summary("bomb.log.gz")
    assert bomb["status"] == "failed" and bomb["error"]["type"] == "GzipExpansion"
    assert bomb["error"]["message"].startswith("gzip expands beyond 2 MiB: ")
    assert summary("app.log.gz")["lines_in"] == 2000

    assert sorted(p.name for p in (watch / "failed").iterdir()) == ["bomb.log.gz", "one_line.log"]
    assert [p.name for p in (watch / "processed").iterdir()] == ["app.log.gz"]
    # a failed file's outputs, written as far as it got, are discarded: only its summary stays
    written = sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
    assert written == ["app.log.gz.json", "app.log.gz.out", "bomb.log.gz.json", "one_line.log.json"]


@pytest.mark.integration
def test_workbook_bombs_fail_once_with_their_reason_and_the_queue_flows(tmp_path: Path) -> None:
    """Before the checks, far.xlsx aborted its worker (SIGABRT) three times, then failed."""
    from tests.processors import workbooks

    watch, results = tmp_path / "watch", tmp_path / "results"
    inbox = watch / "unprocessed"
    inbox.mkdir(parents=True)
    workbooks.far_cell(inbox / "far.xlsx")  # A1 and ZZ1000000: a 22 GB grid
    workbooks.long_shared_string(inbox / "long.xlsx", 64)  # 64 MiB from 65 KB
    workbooks.xlsx(inbox / "people.xlsx")
    (inbox / "app.log").write_text(LOG)
    config = json.loads((ROOT / "pipeline_config.json").read_text())
    drain(watch, results, config, tmp_path)

    def summary(name: str) -> dict:
        return json.loads((results / f"{name}.json").read_text())

    far, long = summary("far.xlsx"), summary("long.xlsx")
    assert far["status"] == long["status"] == "failed"
    assert far["error"]["type"] == long["error"]["type"] == "WorkbookTooLarge"
    assert "spans A1:ZZ1000000, 702,000,000 cells" in far["error"]["message"]
    assert "(reader.max_unpacked_ratio)" in long["error"]["message"]
    assert far["attempts"] == long["attempts"] == 1  # no worker died on them
    assert summary("people.xlsx")["sheets"] == {"People": 2, "Wards": 1}
    assert summary("app.log")["lines_in"] == 2
    assert sorted(p.name for p in (watch / "failed").iterdir()) == ["far.xlsx", "long.xlsx"]
    assert sorted(p.name for p in (watch / "processed").iterdir()) == ["app.log", "people.xlsx"]
