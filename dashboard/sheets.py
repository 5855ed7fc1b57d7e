"""The first rows of each sheet of an xlsx output, in bounded memory whatever its size.

python-calamine reads a whole sheet into memory when asked for one (a 17 MB workbook of
500,000 rows takes 270 MB and 12 s), so it is never given the workbook itself. An xlsx is a
zip of XML parts: this builds, in memory, a copy holding the parts calamine needs (the
workbook, its relations, styles, shared strings), the shown sheet's XML cut after its
first `rows` rows (`</row>`, at most `MAX_SHEET_XML` bytes of it decompressed, whatever the
compression ratio) and every other sheet empty, and lets calamine read that. A part larger
than `MAX_PART` (a huge shared-strings table) means the sheet is not shown in place; the
download still works.
"""

from __future__ import annotations

import io
import posixpath
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import python_calamine as calamine

from processors.excel import ZIP_MAGIC, cell_value

ROWS = 50  # rows shown of a sheet, its header included
MAX_COLUMNS = 50
MAX_CELL = 200  # characters shown of a cell
MAX_SHEETS = 256  # xlsxwriter's and folderd's limit
MAX_PART = 8 << 20  # bytes (decompressed) of a part copied whole
MAX_SHEET_XML = 4 << 20  # bytes (decompressed) read of the shown sheet's XML
SLOTS = 2  # workbooks read at once; others wait WAIT_S, then are told to try again
WAIT_S = 5.0
_KEPT = re.compile(r"\[Content_Types\]\.xml|_rels/\.rels|xl/(_rels/)?workbook\.xml(\.rels)?"
                   r"|xl/styles\.xml|xl/sharedStrings\.xml")  # fmt: skip
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_EMPTY_SHEET = f'<worksheet xmlns="{_MAIN}"><sheetData/></worksheet>'.encode()
_SLOTS = threading.BoundedSemaphore(SLOTS)


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
    if not _SLOTS.acquire(timeout=WAIT_S):
        raise NotShown("other workbooks are being read: try again")
    try:
        small, index = _trimmed(path, index, rows)
        book = calamine.CalamineWorkbook.from_filelike(io.BytesIO(small))
        names = [m.name for m in book.sheets_metadata
                 if m.typ == calamine.SheetTypeEnum.WorkSheet]  # fmt: skip
        sheet = book.get_sheet_by_name(names[index])
        grid = sheet.to_python(skip_empty_area=False, nrows=rows + 1) if sheet.start else []
    except NotShown:
        raise
    except Exception as exc:  # zipfile's, ElementTree's and calamine's errors for bad bytes
        raise NotShown(f"not a workbook that can be shown ({exc.__class__.__name__})") from None
    finally:
        _SLOTS.release()
    more_rows = len(grid) > rows
    shown = [[_text(cell) for cell in row[:MAX_COLUMNS]] for row in grid[:rows]]
    more_columns = any(len(row) > MAX_COLUMNS for row in grid)
    return Sheet(names, index, shown, more_rows, more_columns)


def _text(cell: object) -> str:
    value = cell_value(cell)
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _part(src: zipfile.ZipFile, name: str) -> bytes:
    """A part copied whole: at most MAX_PART bytes once decompressed."""
    with src.open(name) as f:
        data = f.read(MAX_PART + 1)
    if len(data) > MAX_PART:
        raise NotShown(f"its {name} is over {MAX_PART >> 20} MiB: too large to show in place")
    return data


def _worksheets(src: zipfile.ZipFile) -> list[str]:
    """The parts of the workbook's worksheets, in its order (as calamine lists them)."""
    book = ElementTree.fromstring(_part(src, "xl/workbook.xml"))
    rels = ElementTree.fromstring(_part(src, "xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{{{_PKG}}}Relationship")
               if r.get("Type", "").endswith("/worksheet")}  # fmt: skip
    parts = []
    for sheet in book.iter(f"{{{_MAIN}}}sheet"):
        target = targets.get(sheet.get(f"{{{_REL}}}id"))
        if target:
            parts.append(target[1:] if target.startswith("/") else posixpath.join("xl", target))
    return [posixpath.normpath(p) for p in parts]


def _trimmed(path: Path, index: int, rows: int) -> tuple[bytes, int]:
    """The workbook's needed parts, with sheet `index` cut after `rows` + 1 rows and the
    other sheets empty; and the index (0 if there is no such sheet)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        infos = src.infolist()
        if len(infos) > 4 * MAX_SHEETS + 64:
            raise NotShown(f"the workbook has {len(infos)} parts: too many to show in place")
        sheets = _worksheets(src)
        if not sheets:
            raise NotShown("the workbook has no worksheet")
        index = index if 0 <= index < len(sheets) else 0
        for info in infos:
            name = info.filename
            if name == sheets[index]:
                dst.writestr(name, _sheet_head(src, info, rows + 1))
            elif name in sheets:
                dst.writestr(name, _EMPTY_SHEET)
            elif _KEPT.fullmatch(name):
                dst.writestr(name, _part(src, name))
    return out.getvalue(), index


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
