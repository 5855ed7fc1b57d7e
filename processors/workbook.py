"""Workbook output: one .xlsx per input, a sheet per output tag or per value of a field.

Written with xlsxwriter in constant_memory mode: each row goes to the sheet's temp file as
it arrives (in a private temp folder, removed on close or discard), so memory stays flat
whatever the row count; the zip is assembled into the output stream at close. A sheet's
header row is the fields of its first record; it is frozen and carries an autofilter.
Cells are typed: numbers, booleans, ISO-8601 dates and date-times as dates, anything else
as text (never as a formula or a link). A sheet that reaches Excel's 1,048,576 rows, or a
record with fields its header lacks, continues on a new sheet "<name> (2)"; names are cut
to Excel's 31 characters and its forbidden characters replaced, uniquely.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO

import orjson
import xlsxwriter
from xlsxwriter.exceptions import FileSizeError

from processors.base import ProcessorError

EXCEL_ROWS = 1_048_576  # rows per sheet, the header row included
MAX_SHEETS = 256  # sheets per workbook: each holds a temp file open until close
NAME_CHARS = 31
SUMMARY = "Summary"
_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?)?")
_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "nan_inf_to_errors": True,
}
_INT_MAX = 1 << 53  # larger ints lose digits as Excel numbers: written as text


class _Sheet:
    __slots__ = ("fields", "keys", "row", "ws")

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.fields: list[str] = []  # its header: the fields of its first record
        self.keys: set[str] = set()
        self.row = 0  # the next row to write (row 0 is the header)


class Workbook:
    """One input's workbook, written into `stream` at `close()`; `rows` counts the data
    rows of each sheet. The sheets named in `sheets` come first (after the summary), in
    that order, even if they get no rows; others are added as their first row arrives."""

    def __init__(
        self,
        stream: BinaryIO,
        summary: bool,
        sheets: Iterable[str] = (),
        max_rows: int = EXCEL_ROWS,
    ) -> None:
        self._tmp = tempfile.mkdtemp(prefix="folderd-xlsx-")
        self._book = xlsxwriter.Workbook(stream, {**_OPTIONS, "tmpdir": self._tmp})
        self._bold = self._book.add_format({"bold": True})
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd"})
        self._datetime = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._max_rows = max_rows
        self._taken: set[str] = set()  # sheet names in use, lower-cased (Excel's rule)
        self._current: dict[str, _Sheet] = {}  # by logical name: the sheet it continues on
        self._all: list[_Sheet] = []
        self._summary = self._add_sheet(SUMMARY) if summary else None
        self.rows: dict[str, int] = {}
        for name in sheets:
            self._current[name] = self._new_sheet(name)

    def add(self, name: str, records: Iterable[dict[str, Any]]) -> None:
        """Append records to the sheet called `name` (or its continuation)."""
        sheet = self._current.get(name)
        for record in records:
            if sheet is None or sheet.row == self._max_rows or not record.keys() <= sheet.keys:
                sheet = self._continue(name, sheet, record)
            self._write_row(sheet, record)

    def _continue(self, name: str, full: _Sheet | None, record: dict[str, Any]) -> _Sheet:
        """The sheet `name`'s next record goes to: a new one, unless `full` has no header
        yet (a sheet reserved empty); the header is the last one's widened by `record`."""
        fields = [] if full is None else list(full.fields)
        fields += [k for k in record if full is None or k not in full.keys]
        sheet = full if full is not None and full.row == 0 else self._new_sheet(name)
        sheet.fields, sheet.keys, sheet.row = fields, set(fields), 1
        sheet.ws.write_row(0, 0, fields, self._bold)
        sheet.ws.freeze_panes(1, 0)
        for col, field in enumerate(fields):
            sheet.ws.set_column(col, col, min(max(len(field), 8) + 2, 60))
        self._current[name] = sheet
        return sheet

    def _new_sheet(self, name: str) -> _Sheet:
        sheet = _Sheet(self._add_sheet(name))
        self._all.append(sheet)
        self.rows[sheet.ws.name] = 0
        return sheet

    def _add_sheet(self, name: str) -> Any:
        if len(self._taken) == MAX_SHEETS:
            raise ProcessorError(
                f"a workbook holds at most {MAX_SHEETS} sheets: too many values of sheet_by, "
                "or of rows",
                error_type="TooManySheets",
            )
        unique = sheet_name(name, self._taken)
        self._taken.add(unique.lower())
        return self._book.add_worksheet(unique)

    def _write_row(self, sheet: _Sheet, record: dict[str, Any]) -> None:
        ws, row = sheet.ws, sheet.row
        for col, field in enumerate(sheet.fields):
            value = record.get(field)
            if value is None:
                continue
            kind = value.__class__
            if kind is str:
                if 10 <= len(value) <= 26 and value[4:5] == "-" and _ISO_DATE.fullmatch(value):
                    self._write_date(ws, row, col, value)
                else:
                    ws.write_string(row, col, value)
            elif kind is bool:
                ws.write_boolean(row, col, value)
            elif kind is float or (kind is int and -_INT_MAX < value < _INT_MAX):
                ws.write_number(row, col, value)
            elif kind in (dict, list):
                ws.write_string(row, col, orjson.dumps(value).decode())
            else:
                ws.write_string(row, col, str(value))
        sheet.row = row + 1
        self.rows[sheet.ws.name] += 1

    def _write_date(self, ws: Any, row: int, col: int, text: str) -> None:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:  # 2026-13-45: looks like a date, is not one
            ws.write_string(row, col, text)
            return
        ws.write_datetime(row, col, when, self._date if len(text) == 10 else self._datetime)

    def close(self, aggregates: dict[str, Any]) -> None:
        """Finish every sheet (autofilter; the summary sheet) and write the workbook out."""
        for sheet in self._all:
            if sheet.row > 1:
                sheet.ws.autofilter(0, 0, sheet.row - 1, len(sheet.fields) - 1)
        if self._summary is not None:
            self._write_summary(self._summary, aggregates)
        try:
            self._book.close()
        except FileSizeError:
            raise ProcessorError(
                "the workbook would exceed 4 GiB, the zip limit Excel reads",
                error_type="WorkbookTooLarge",
            ) from None
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def discard(self) -> None:
        """Drop the workbook unwritten (the file failed): its temp files go."""
        for ws in self._book.worksheets():
            ws._opt_close()  # what Workbook.close() does: no public API closes without writing
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _write_summary(self, ws: Any, aggregates: dict[str, Any]) -> None:
        ws.write_row(0, 0, ["what", "value"], self._bold)
        ws.freeze_panes(1, 0)
        ws.set_column(0, 0, 40)
        ws.set_column(1, 1, 16)
        rows = [(f"rows in sheet {name}", n) for name, n in self.rows.items()]
        rows += list(_flatten(aggregates, ()))
        for i, (what, value) in enumerate(rows, 1):
            ws.write_string(i, 0, what)
            if value.__class__ in (int, float):
                ws.write_number(i, 1, value)
            else:
                ws.write_string(i, 1, "" if value is None else str(value))


def _flatten(value: Any, path: tuple[str, ...]) -> Iterable[tuple[str, Any]]:
    """Nested aggregates as ("node / field / value", count) rows."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, (*path, str(key)))
    elif isinstance(value, list):
        yield " / ".join(path), orjson.dumps(value).decode()
    else:
        yield " / ".join(path), value


def sheet_name(name: str, taken: set[str]) -> str:
    """`name` as a valid sheet name not in `taken` (lower-cased names): forbidden
    characters become "_", at most 31 characters, " (2)", " (3)"… added when taken."""
    base = _FORBIDDEN.sub("_", name).strip("'") or "sheet"
    candidate, n = base[:NAME_CHARS], 1
    while candidate.lower() in taken or candidate.lower() == "history":
        n += 1
        tail = f" ({n})"
        candidate = base[: NAME_CHARS - len(tail)] + tail
    return candidate
