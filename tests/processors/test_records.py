"""CSV files through the default pipeline: routed by name or by a CSV-looking head, rows
into records, malformed rows named by line and reason, per-column facts in the summary."""

from __future__ import annotations

import json
from typing import Any

from config.pipeline_parser import read_json
from tests.conftest import ROOT

DEFAULT = read_json(ROOT / "pipeline_config.json")


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_csv_file_becomes_records_with_its_malformed_rows_apart(run: Any) -> None:
    data = (
        'id,level,note\n1,INFO,plain\n2,ERROR,"two\nlines"\n3,WARN\n\n4,INFO,"a, b"\n5,INFO,x,y\n'
    )
    summary, out = run(DEFAULT, data, "export.csv")
    assert summary["start_tag"] == "csv"
    assert _lines(out["out"]) == [
        {"id": "1", "level": "INFO", "note": "plain"},
        {"id": "4", "level": "INFO", "note": "a, b"},
    ]
    assert _lines(out["errors"]) == [{"id": "2", "level": "ERROR", "note": "two\nlines"}]
    assert _lines(out["malformed"]) == [
        {"line": 5, "reason": "expected 3 columns, got 2", "row": ["3", "WARN"]},
        {"line": 8, "reason": "expected 3 columns, got 4", "row": ["5", "INFO", "x", "y"]},
    ]
    columns = summary["aggregates"]["columns"]
    assert columns["rows"] == 3
    assert columns["columns"]["id"] == {
        "filled": 3, "empty": 0, "type": "number", "min": 1, "max": 4, "distinct": 3,
    }  # fmt: skip
    assert columns["columns"]["note"]["type"] == "text"
    assert summary["aggregates"]["counts"]["level"] == {"INFO": 2, "ERROR": 1}


def test_a_csv_looking_head_takes_the_csv_route_whatever_the_name(run: Any) -> None:
    summary, out = run(DEFAULT, "name,amount,city\nada,3,Oslo\n", "upload.txt")
    assert summary["start_tag"] == "csv"
    assert _lines(out["out"]) == [{"name": "ada", "amount": "3", "city": "Oslo"}]


def test_log_lines_with_commas_are_not_taken_for_csv(run: Any) -> None:
    log = "2026-11-22 10:00:00 [INFO] API: served a, b, c\nSegmentation fault, core, dumped\n"
    summary, _ = run(DEFAULT, log, "notes.txt")
    assert summary["start_tag"] == "log"


def test_a_header_only_csv_gives_no_rows_and_no_outputs(run: Any) -> None:
    summary, out = run(DEFAULT, "a,b,c\n", "empty.csv")
    assert out == {}
    assert summary["aggregates"]["columns"] == {"rows": 0, "columns": {}}


def test_a_wide_csv_profiles_its_first_columns_and_counts_the_rest(run: Any) -> None:
    # before: every column profiled (a 100,000-column header made a 12.6 MB summary)
    width = 5000
    header = ",".join(f"c{i}" for i in range(width))
    rows = "\n".join(",".join(str(r * i % 7) for i in range(width)) for r in range(3))
    summary, out = run(DEFAULT, f"{header}\n{rows}\n", "wide.csv")
    profile = summary["aggregates"]["columns"]
    assert profile["rows"] == 3
    assert list(profile["columns"]) == [f"c{i}" for i in range(200)]
    assert profile["columns_not_profiled"] == width - 200
    assert profile["note"].startswith("only the first 200 columns are profiled (max_columns)")
    assert len(json.dumps(summary)) < 40_000
    assert len(_lines(out["out"])[2]) == width  # every value still in the records


def test_wide_rows_come_in_smaller_batches() -> None:
    from processors.readers import BATCH_CELLS, rows_per_batch

    assert rows_per_batch(6) == 256
    assert rows_per_batch(20_000) == BATCH_CELLS // 20_000 == 3
    assert rows_per_batch(1_000_000) == 1
