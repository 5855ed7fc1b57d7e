"""dashboard.sheets: an xlsx output's first rows, read by python-calamine from a copy of
the workbook cut after those rows, so a big workbook costs what a small one does."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

from dashboard.sheets import MAX_CELL, ROWS, NotShown, first_rows


def big_workbook(path: Path, rows: int) -> Path:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("rows")
    sheet.write_row(0, 0, ["id", "name", "amount", "note"])
    for i in range(1, rows):
        sheet.write_row(i, 0, [i, f"name {i}", i * 1.5, "x" * 20])
    other = book.add_worksheet("Summary")
    other.write_row(0, 0, ["sheet", "rows"])
    other.write_row(1, 0, ["rows", rows - 1])
    book.close()
    return path


@pytest.mark.serial  # timed: alone, after the parallel part
def test_a_100000_row_workbook_shows_its_first_rows_at_once(tmp_path: Path) -> None:
    path = big_workbook(tmp_path / "big.xlsx", 100_000)  # calamine alone: ~1 s, +34 MB
    started = time.perf_counter()
    sheet = first_rows(path, 0)
    took = time.perf_counter() - started
    assert sheet.names == ["rows", "Summary"] and sheet.index == 0
    assert len(sheet.rows) == ROWS and sheet.more_rows and not sheet.more_columns
    assert sheet.rows[0] == ["id", "name", "amount", "note"]
    assert sheet.rows[3] == ["3", "name 3", "4.5", "x" * 20]
    assert took < 0.5, f"{took:.2f} s for the first rows"
    summary = first_rows(path, 1)
    assert summary.index == 1 and summary.rows == [["sheet", "rows"], ["rows", "99999"]]
    assert not summary.more_rows
    assert first_rows(path, 7).index == 0  # no such sheet: the first


def test_shared_strings_long_cells_and_wide_rows(tmp_path: Path) -> None:
    book = openpyxl.Workbook()  # openpyxl writes a shared-strings table, as Excel does
    sheet = book.active
    sheet.title = "Wide"
    sheet.append([f"c{i}" for i in range(60)])
    sheet.append(["y" * 500, "<b>x</b>", None, 3.0])
    book.save(tmp_path / "w.xlsx")
    shown = first_rows(tmp_path / "w.xlsx", 0)
    assert shown.more_columns and len(shown.rows[0]) == 50
    assert shown.rows[1][:4] == ["y" * (MAX_CELL - 1) + "…", "<b>x</b>", "", "3"]


def test_what_cannot_be_shown_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(NotShown):
        first_rows(bad, 0)
    huge = tmp_path / "huge.xlsx"
    big_workbook(huge, 10)
    with zipfile.ZipFile(huge, "a") as z:  # a shared-strings part past the limit
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b" " * (17 << 20) + b"</sst>")
    with pytest.raises(NotShown, match="too large to show in place"):
        first_rows(huge, 0)
