"""The default pipeline on tabular files, through a real daemon: `make sample`'s CSVs, Excel
workbooks in, workbooks out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Queue, wait_until

pytestmark = pytest.mark.integration


def _outputs(queue: Queue, name: str) -> dict[str, list[str]]:
    """Each output of `name` (by suffix): its lines."""
    summary = queue.summaries()[name]
    return {
        out.rsplit(".", 1)[1]: (queue.results / out).read_text().splitlines()
        for out in summary["output_files"]
    }


def test_every_file_make_sample_writes_comes_out_parsed(queue: Queue, start_daemon) -> None:
    subprocess.run(
        [sys.executable, "generate_sample_logs.py", "--watch-dir", str(queue.root),
         "--count", "12", "--large", "0", "--lines", "400", "--seed", "7", "--quiet"],
        cwd=ROOT, check=True, timeout=60,
    )  # fmt: skip
    names = queue.files("unprocessed")
    assert {Path(n).suffixes[-1] for n in names} >= {".csv", ".log", ".jsonl", ".gz"}
    start_daemon()
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "every sample processed")
    summaries = queue.summaries()
    for name in names:
        s = summaries[name]
        assert s["status"] == "processed", name
        parsed = s["lines_out"] - s["outputs"].get("unparsed", 0) - s["outputs"].get("malformed", 0)
        assert parsed > s["lines_in"] / 2, f"{name}: only {parsed} of {s['lines_in']} parsed"
    csvs = [n for n in names if n.endswith(".csv")]
    assert csvs
    for name in csvs:
        s, out = summaries[name], _outputs(queue, name)
        assert "unparsed" not in out
        record = json.loads(out["out"][0])
        assert set(record) == {"timestamp", "level", "component", "message"}
        columns = s["aggregates"]["columns"]
        assert columns["rows"] == s["tags"]["table"]
        assert columns["columns"]["level"]["distinct"] <= 5
        assert set(s["aggregates"]["counts"]["level"]) <= {"DEBUG", "INFO", "WARN", "ERROR",
                                                           "CRITICAL"}  # fmt: skip
        for line in out.get("malformed", []):
            bad = json.loads(line)
            assert bad["line"] > 1 and bad["reason"].startswith("expected 4 columns, got ")
