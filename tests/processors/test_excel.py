"""The Excel reader against real workbooks: .xlsx, .xls and .ods by name or signature, typed
values, the sheets configured, and clear errors for protected, corrupt or oversized ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.pipeline_parser import parse, read_json
from processors.base import ProcessorError
from tests.conftest import ROOT
from tests.processors import workbooks

DEFAULT = read_json(ROOT / "pipeline_config.json")
ADA = {"sheet": "People", "row": 2, "id": 1, "name": "Ada", "score": 9.5,
       "joined": "2024-05-06T07:08:09", "active": True, "note": None}  # fmt: skip


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _excel(reader: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "routes": [{"start": "rows", "reader": {"type": "excel", **(reader or {})}}],
        "outputs": {"rows": {}},
    }


def test_an_xlsx_gives_one_typed_record_per_row_of_every_sheet(run: Any, tmp_path: Path) -> None:
    book = workbooks.xlsx(tmp_path / "people.xlsx").read_bytes()
    summary, out = run(DEFAULT, book, "people.xlsx")
    assert summary["start_tag"] == "table"
    assert summary["sheets"] == {"People": 2, "Wards": 1}
    records = _records(out["out"])
    assert records[0] == ADA
    assert records[1]["joined"] == "2023-01-02"  # a date-time at midnight reads as a date
    assert records[1]["score"] == 7 and records[1]["active"] is False
    assert records[2] == {"sheet": "Wards", "row": 2, "ward": 12, "voters": 3400}
    assert summary["aggregates"]["columns"]["columns"]["score"]["max"] == 9.5


def test_a_workbook_is_known_by_its_signature_whatever_its_name(run: Any, tmp_path: Path) -> None:
    book = workbooks.xlsx(tmp_path / "a.xlsx").read_bytes()
    summary, out = run(DEFAULT, book, "upload-7f3a.bin")
    assert summary["start_tag"] == "table"
    assert _records(out["out"])[0] == ADA


def test_an_xls_reads_like_an_xlsx(run: Any, tmp_path: Path) -> None:
    book = workbooks.xls(tmp_path / "old.xls").read_bytes()
    assert book.startswith(b"\xd0\xcf\x11\xe0")
    summary, out = run(DEFAULT, book, "scan")  # no extension: the OLE signature says Excel
    assert summary["sheets"] == {"People": 2, "Wards": 1}
    assert _records(out["out"])[0] == ADA


def test_an_ods_reads_too(run: Any, tmp_path: Path) -> None:
    book = workbooks.ods(tmp_path / "s.ods", [["ward", "name"], [3, "Cy"], [4.5, "Di"]])
    _, out = run(DEFAULT, book.read_bytes(), "s.ods")
    assert _records(out["out"]) == [
        {"sheet": "Sheet1", "row": 2, "ward": 3, "name": "Cy"},
        {"sheet": "Sheet1", "row": 3, "ward": 4.5, "name": "Di"},
    ]


def test_only_the_sheets_configured_are_read(run: Any, tmp_path: Path) -> None:
    book = workbooks.xlsx(tmp_path / "p.xlsx").read_bytes()
    summary, out = run(_excel({"sheets": ["Wards"], "row_field": None}), book, "p.xlsx")
    assert summary["sheets"] == {"Wards": 1}
    assert _records(out["rows"]) == [{"sheet": "Wards", "ward": 12, "voters": 3400}]
    with pytest.raises(ProcessorError, match=r"no sheet 'Votes' \(it has: People, Wards\)"):
        run(_excel({"sheets": ["Votes"]}), book, "p.xlsx")


def test_without_a_header_fields_are_column_letters(run: Any, tmp_path: Path) -> None:
    rows: workbooks.Sheets = {"S": [["a", None, 3], [None, None, None], ["b", 2]]}
    book = workbooks.xlsx(tmp_path / "h.xlsx", rows).read_bytes()
    _, out = run(_excel({"header": False, "sheet_field": None}), book, "h.xlsx")
    assert _records(out["rows"]) == [  # the empty row 2 is left out
        {"row": 1, "A": "a", "B": None, "C": 3},
        {"row": 3, "A": "b", "B": 2, "C": None},
    ]


def test_a_password_protected_workbook_fails_with_that_reason(run: Any, tmp_path: Path) -> None:
    plain = workbooks.xlsx(tmp_path / "p.xlsx")
    book = workbooks.encrypted(tmp_path / "locked.xlsx", plain).read_bytes()
    with pytest.raises(ProcessorError) as info:
        run(DEFAULT, book, "locked.xlsx")
    assert info.value.error_type == "PasswordProtected"
    assert "password-protected" in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_workbook_fails_as_unreadable(run: Any, tmp_path: Path, damage: str) -> None:
    book = workbooks.xlsx(tmp_path / "p.xlsx").read_bytes()
    bad = book[: len(book) // 2] if damage == "truncated" else b"PK\x03\x04" + b"\x00junk" * 99
    with pytest.raises(ProcessorError) as info:
        run(DEFAULT, bad, "broken.xlsx")
    assert info.value.error_type == "BadWorkbook"
    assert str(info.value).startswith("unreadable workbook: ")


def test_a_workbook_over_the_cap_fails_before_it_is_parsed(run: Any) -> None:
    big = b"PK\x03\x04" + bytes(3 << 20)
    with pytest.raises(ProcessorError, match=r"larger than 2 MiB \(reader.max_workbook_mb\)"):
        run(_excel({"max_workbook_mb": 2}), big, "big.xlsx")


def test_excel_reader_keys_are_checked() -> None:
    bad = {"routes": [{"start": "end", "reader": {"type": "csv", "sheets": ["A"]}},
                      {"start": "end", "signature": "pdf"}]}  # fmt: skip
    _, errors = parse(bad)
    text = "\n".join(map(str, errors))
    assert "$.routes[0].reader.sheets" in text and "only meaningful for the excel reader" in text
    assert "$.routes[1].signature" in text
