"""The default pipeline on tabular files, through a real daemon: `make sample`'s CSVs, Excel
workbooks in, workbooks out."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import ROOT, Queue, wait_until
from tests.dashboard.conftest import start_dashboard  # noqa: F401  (a fixture)
from tests.processors import workbooks

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


VOTERS = [
    ["id", "name", "status", "registered"],
    [1001, "Ada", "registered", dt.date(2020, 3, 4)],
    [1002, "Bob", "elsewhere", dt.date(2019, 1, 2)],
    [1003, "Cy", "registered", None],
    [1004, "Di", None, None],
]
TABULAR = {
    "routes": [
        {"signature": "excel", "start": "table", "reader": {"type": "excel", "row_field": None}},
        {"glob": "*.csv", "start": "csv", "reader": {"type": "csv"}},
    ],
    "nodes": [
        {"name": "csv_rows", "tag": "csv", "use": "csv_records", "to": "table",
         "options": {"invalid": "malformed"}},
        {"name": "by_status", "tag": "table", "use": "aggregate", "to": "checked",
         "options": {"by": "status"}},
    ],
    "outputs": {
        "checked": {"format": "xlsx", "sheet_by": "status", "summary": True},
        "malformed": {"format": "xlsx", "sheet": "Malformed rows"},
    },
}  # fmt: skip


def test_an_xlsx_and_a_csv_come_out_as_workbooks_downloadable_from_the_file_page(
    queue: Queue,
    start_dashboard,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    config = tmp_path / "tabular.json"
    config.write_text(json.dumps(TABULAR))
    dash = start_dashboard("--config", str(config))
    book = workbooks.xlsx(tmp_path / "w.xlsx", {"Ward 7": VOTERS})
    queue.drop("ward_7.xlsx", book.read_bytes())
    queue.drop("ward_8.csv", "id,name,status\n2001,Eve,registered\n2002,Fay\n2003,Gus,elsewhere\n")
    for name in ("ward_7.xlsx", "ward_8.csv"):
        wait_until(lambda n=name: dash.find("processed", n), 60, f"{name} processed")
    summaries = queue.summaries()

    xlsx = summaries["ward_7.xlsx"]
    assert xlsx["output_files"] == ["ward_7.xlsx.xlsx"] and xlsx["sheets"] == {"Ward 7": 4}
    page = dash.get(f"/files/{xlsx['uid']}").text
    assert 'href="/download/results/ward_7.xlsx.xlsx"' in page
    r = dash.get("/download/results/ward_7.xlsx.xlsx")
    assert r.status_code == 200
    read = openpyxl.load_workbook(io.BytesIO(r.content))
    assert read.sheetnames == ["Summary", "Malformed rows", "registered", "elsewhere", "(none)"]
    rows = [[c.value for c in row] for row in read["registered"].iter_rows()]
    assert rows == [
        ["sheet", "id", "name", "status", "registered"],
        ["Ward 7", 1001, "Ada", "registered", dt.datetime(2020, 3, 4)],
        ["Ward 7", 1003, "Cy", "registered", None],
    ]
    summary = {row[0].value: row[1].value for row in read["Summary"].iter_rows(min_row=2)}
    assert summary["by_status / status / registered"] == 2
    assert summary["rows in sheet (none)"] == 1

    csv = summaries["ward_8.csv"]
    read = openpyxl.load_workbook(queue.results / "ward_8.csv.xlsx")
    assert read.sheetnames == ["Summary", "Malformed rows", "registered", "elsewhere"]
    bad = [[c.value for c in row] for row in read["Malformed rows"].iter_rows()]
    assert bad == [["line", "reason", "row"], [3, "expected 3 columns, got 2", '["2002","Fay"]']]
    assert csv["outputs"] == {"xlsx": 3}
    assert queue.temp_results() == []
