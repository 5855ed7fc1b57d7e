"""End to end through the real daemon: input that expands fails cleanly, leaving no outputs.

`python main.py --drain` on a queue holding a file of one line longer than the configured
limit, a gzip bomb in miniature, and an ordinary gzipped log beside them.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.processors.pipeline_helpers import drain

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
