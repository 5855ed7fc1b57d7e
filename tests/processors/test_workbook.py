"""The xlsx output, read back with openpyxl: a sheet per tag or per field value, typed
cells, header, frozen panes, autofilter, the summary sheet, Excel's limits."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from processors.base import ProcessorError
from processors.workbook import Workbook, sheet_name

CSV = (
    "id,kind,when,amount,note\n"
    "1,member,2024-01-02,3.5,=1+1\n"
    "2,guest,2024-01-02T03:04:05,-2,http://example.com\n"
    "3,member,,7,\n"
    "4,x\n"
)


def _config(**outputs: Any) -> dict[str, Any]:
    columns = [{"name": "id", "type": "int"}, {"name": "kind"}, {"name": "when"},
               {"name": "amount", "type": "float"}, {"name": "note"}]  # fmt: skip
    return {
        "routes": [{"start": "csv", "reader": {"type": "csv"}}],
        "nodes": [
            {
                "name": "valid",
                "tag": "csv",
                "use": "csv_validate",
                "to": "rows",
                "options": {"columns": columns, "emit": "record", "invalid": "bad"},
            },
            {
                "name": "counts",
                "tag": "rows",
                "use": "aggregate",
                "to": "ok",
                "options": {"by": "kind"},
            },
        ],
        "outputs": outputs,
    }


def _book(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def _cells(ws: Any) -> list[list[Any]]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_a_sheet_per_tag_with_typed_cells_a_header_and_a_summary(run: Any) -> None:
    config = _config(ok={"format": "xlsx", "sheet": "Valid rows", "summary": True},
                     bad={"format": "xlsx"})  # fmt: skip
    summary, out = run(config, CSV, "pay.csv")
    assert set(out) == {"xlsx"}
    assert summary["outputs"] == {"xlsx": 4}
    book = _book(out["xlsx"])
    assert book.sheetnames == ["Summary", "Valid rows", "bad"]
    rows = book["Valid rows"]
    assert _cells(rows)[0] == ["id", "kind", "when", "amount", "note"]
    assert rows.freeze_panes == "A2" and rows.auto_filter.ref == "A1:E4"
    first = [c for c in next(rows.iter_rows(min_row=2))]
    assert [c.value for c in first[:4]] == [1, "member", dt(2024, 1, 2), 3.5]
    assert first[2].number_format == "yyyy-mm-dd"
    assert first[4].value == "=1+1" and first[4].data_type == "s"  # text, never a formula
    second = _cells(rows)[2]
    assert second[2] == dt(2024, 1, 2, 3, 4, 5) and second[4] == "http://example.com"
    assert _cells(rows)[3] == [3, "member", None, 7, None]
    assert _cells(book["bad"])[1][:2] == [5, "expected 5 columns, got 2"]
    assert dict(_cells(book["Summary"])[1:]) == {
        "rows in sheet Valid rows": 3, "rows in sheet bad": 1,
        "counts / kind / member": 2, "counts / kind / guest": 1,
    }  # fmt: skip


def dt(*parts: int) -> Any:
    import datetime

    return datetime.datetime(*parts)


def test_sheet_by_gives_a_sheet_per_value_of_a_field(run: Any) -> None:
    _, out = run(_config(ok={"format": "xlsx", "sheet_by": "kind"}, bad={}), CSV, "pay.csv")
    book = _book(out["xlsx"])
    assert book.sheetnames == ["member", "guest"]
    assert [r[0] for r in _cells(book["member"])] == ["id", 1, 3]


def test_a_full_sheet_continues_on_a_new_one_with_its_header(tmp_path: Path) -> None:
    stream = io.BytesIO()
    book = Workbook(stream, summary=False, max_rows=3)  # a header and 2 rows a sheet
    book.add("data", [{"n": i} for i in range(5)])
    book.add("data", [{"n": 5, "extra": "x"}])  # a field the header lacks: a new sheet too
    book.close({})
    read = _book(stream.getvalue())
    assert read.sheetnames == ["data", "data (2)", "data (3)", "data (4)"]
    assert [_cells(read[s]) for s in read.sheetnames] == [
        [["n"], [0], [1]], [["n"], [2], [3]], [["n"], [4]], [["n", "extra"], [5, "x"]],
    ]  # fmt: skip
    assert book.rows == {"data": 2, "data (2)": 2, "data (3)": 1, "data (4)": 1}


def test_sheet_names_are_cut_and_cleaned_uniquely() -> None:
    taken: set[str] = set()
    names = []
    for name in ["a" * 40, "a" * 35, "Q3: in/out [draft]?", "History", "'quoted'", ""]:
        names.append(sheet_name(name, taken))
        taken.add(names[-1].lower())
    assert names == ["a" * 31, "a" * 27 + " (2)", "Q3_ in_out _draft__", "History (2)",
                     "quoted", "sheet"]  # fmt: skip
    assert all(len(n) <= 31 for n in names)


def test_a_failed_file_leaves_no_workbook_temp_files(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = {"routes": [{"start": "in"}],
              "nodes": [{"tag": "in", "use": "json_validate", "to": "rec",
                         "options": {"invalid": None}},
                        {"tag": "rec", "use": "tests.processors.test_workbook:fail_on_x"}],
              "outputs": {"end": {"format": "xlsx"}}}  # fmt: skip
    lines = "".join(f'{{"n": {i}}}\n' for i in range(3000)) + '{"x": 1}\n'
    with pytest.raises(ProcessorError, match="x is not allowed"):
        run(config, lines, "in.jsonl")
    assert list(tmp_path.iterdir()) == []


def fail_on_x(line: Any) -> Any:
    if "x" in line:
        raise ValueError("x is not allowed")
    return line


def test_xlsx_output_keys_are_checked_and_shown_in_the_outline() -> None:
    from config.pipeline_parser import parse
    from processors.loader import load

    bad = {"outputs": {"a": {"sheet_by": "kind"}, "b": {"suffix": "a"},
                       "c": {"format": "xlsx", "sink": {"type": "sqlite"}}}}  # fmt: skip
    text = "\n".join(map(str, parse(bad)[1]))
    assert "$.outputs.a.sheet_by: only meaningful for an xlsx output" in text
    assert "$.outputs.b: suffix 'a' already used by output 'a'" in text
    assert "$.outputs.c.sink: an xlsx output is a workbook in results/" in text
    outline = load(_config(ok={"format": "xlsx", "sheet_by": "kind", "summary": True},
                           bad={"format": "xlsx"})).outline()  # fmt: skip
    assert "ok -> <file>.xlsx (a sheet per kind, with a summary sheet)" in outline
    assert "bad -> <file>.xlsx (sheet bad)" in outline


def test_csv_rows_and_text_lines_become_sheet_rows_too(run: Any) -> None:
    config = {"routes": [{"glob": "*.csv", "start": "rows", "reader": {"type": "csv"}},
                         {"start": "lines"}],
              "outputs": {"rows": {"format": "xlsx"}, "lines": {"format": "xlsx"}}}  # fmt: skip
    _, out = run(config, "a,b\n1,x\n", "t.csv")
    assert _cells(_book(out["xlsx"])["rows"]) == [["a", "b"], ["1", "x"]]
    _, out = run(config, "first line\nsecond\n", "t.log")
    assert _cells(_book(out["xlsx"])["lines"]) == [["line"], ["first line"], ["second"]]
