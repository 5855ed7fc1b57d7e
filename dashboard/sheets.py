"""The first rows of each sheet of an xlsx output, in bounded memory whatever its size.

python-calamine reads a whole sheet into memory when asked for one (a 17 MB workbook of
500,000 rows takes 270 MB and 12 s), so it is never given the workbook itself. An xlsx is a
zip of XML parts: this builds, in memory, a copy holding the parts calamine needs (the
workbook, its relations, styles, shared strings) and each sheet's XML cut after its first
`rows` rows (`</row>`, at most `MAX_SHEET_XML` bytes of it decompressed, whatever the
compression ratio), and lets calamine read that. A part larger than `MAX_PART` (a huge
shared-strings table) means the sheet is not shown in place; the download still works.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import python_calamine as calamine

from processors.excel import ZIP_MAGIC, cell_value

ROWS = 50  # rows shown of a sheet, its header included
MAX_COLUMNS = 50
MAX_CELL = 200  # characters shown of a cell
MAX_SHEETS = 256  # xlsxwriter's and folderd's limit
MAX_PART = 16 << 20  # bytes (decompressed) of a part copied whole
MAX_SHEET_XML = 4 << 20  # bytes (decompressed) read of one sheet's XML
_KEPT = re.compile(r"\[Content_Types\]\.xml|_rels/\.rels|xl/(_rels/)?workbook\.xml(\.rels)?"
                   r"|xl/styles\.xml|xl/sharedStrings\.xml")  # fmt: skip
_SHEET = re.compile(r"xl/worksheets/[^/]+\.xml")


class NotShown(Exception):
    """The workbook cannot be shown in place (the message says why); download it."""


@dataclass(frozen=True)
class Sheet:
    names: list[str]  # every worksheet's name, in order
    index: int  # the one shown
    rows: list[list[str]]  # its first rows, cells as text
    more_rows: bool  # it has more rows than shown
    more_columns: bool


def is_xlsx(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == ZIP_MAGIC
    except OSError:
        return False


def first_rows(path: Path, index: int, rows: int = ROWS) -> Sheet:
    """Sheet `index`'s first `rows` rows (the first sheet if there is no such index)."""
    try:
        small = _trimmed(path, rows)
        book = calamine.CalamineWorkbook.from_filelike(io.BytesIO(small))
        names = [m.name for m in book.sheets_metadata
                 if m.typ == calamine.SheetTypeEnum.WorkSheet]  # fmt: skip
        if not names:
            raise NotShown("the workbook has no worksheet")
        index = index if 0 <= index < len(names) else 0
        sheet = book.get_sheet_by_name(names[index])
        grid = sheet.to_python(skip_empty_area=False, nrows=rows + 1) if sheet.start else []
    except NotShown:
        raise
    except Exception as exc:  # zipfile's and calamine's many errors for bad bytes
        raise NotShown(f"not a workbook that can be shown ({exc.__class__.__name__})") from None
    more_rows = len(grid) > rows
    shown = [[_text(cell) for cell in row[:MAX_COLUMNS]] for row in grid[:rows]]
    more_columns = any(len(row) > MAX_COLUMNS for row in grid)
    return Sheet(names, index, shown, more_rows, more_columns)


def _text(cell: object) -> str:
    value = cell_value(cell)
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _trimmed(path: Path, rows: int) -> bytes:
    """The workbook's needed parts, each sheet cut after `rows` + 1 rows."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        infos = src.infolist()
        if len(infos) > 4 * MAX_SHEETS + 64:
            raise NotShown(f"the workbook has {len(infos)} parts: too many to show in place")
        for info in infos:
            name = info.filename
            if _SHEET.fullmatch(name):
                dst.writestr(name, _sheet_head(src, info, rows + 1))
            elif _KEPT.fullmatch(name):
                with src.open(info) as f:
                    data = f.read(MAX_PART + 1)
                if len(data) > MAX_PART:
                    raise NotShown(f"its {name} is over {MAX_PART >> 20} MiB: too large to "
                                   "show in place")  # fmt: skip
                dst.writestr(name, data)
    return out.getvalue()


def _sheet_head(src: zipfile.ZipFile, info: zipfile.ZipInfo, rows: int) -> bytes:
    """A sheet's XML up to the end of its `rows`-th row, closed so that it parses."""
    data = bytearray()
    found = 0
    with src.open(info) as f:
        while found < rows and len(data) < MAX_SHEET_XML:
            chunk = f.read(64 << 10)
            if not chunk:
                return bytes(data)  # the whole sheet
            start = max(0, len(data) - 5)
            data += chunk
            found += data.count(b"</row>", start)
        whole = not f.read(1)
    if whole and found < rows:
        return bytes(data)
    cut = 0
    for _ in range(min(found, rows)):
        cut = data.index(b"</row>", cut) + len(b"</row>")
    if cut == 0:  # no complete row in the first MAX_SHEET_XML bytes
        open_data = data.find(b"<sheetData")
        if open_data < 0:
            raise NotShown("a sheet's XML has no data where expected")
        cut = data.index(b">", open_data) + 1
    return bytes(data[:cut]) + b"</sheetData></worksheet>"
