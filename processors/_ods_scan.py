"""Bounded scans of an OpenDocument spreadsheet's `content.xml`, as calamine will read
it: the grid each table spans and the text its cells will hold, found before calamine
allocates either (see `processors._sheet_scan` for why neither can be trusted to the
file's own claims). A table's rows and columns are capped where calamine caps them.
"""

from __future__ import annotations

import re

from processors._sheet_scan import CELL_COST, Extent

ODS_MAX_ROWS = 1_048_576  # calamine caps a table's rows and a row's columns at these
ODS_MAX_COLUMNS = 16_384
_ODS_TAG = re.compile(rb"<(/?)([^\s<>/!?]+)([^>]*)>")
_ODS_ATTR = re.compile(rb"""([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_VALUES = (b"office:value", b"office:string-value", b"office:date-value",
           b"office:time-value", b"office:boolean-value")  # fmt: skip
_CELLS = (b"table:table-cell", b"table:covered-table-cell")


class OdsContent:
    """The tables of an `.ods`'s `content.xml` as calamine reads them, all at once when
    the workbook opens: for each, its grid (`(name, extent, cells)`, the cells of the rows
    as read plus those of the grid they are repeated into) and, for all, the text the
    cells hold (`text`: a repeated cell's text once per repeat). Every tag is walked
    (`table:number-columns-repeated`, `number-rows-repeated` and `text:s` multiply)."""

    def __init__(self, max_cells: int) -> None:
        self.tables: list[tuple[str, Extent, int]] = []
        self.text = 0
        self._max = max_cells
        self._carry = b""
        self._table: _OdsTable | None = None

    def feed(self, chunk: bytes) -> None:
        buf = self._carry + chunk if self._carry else chunk
        cut = buf.rfind(b"<")
        if cut < 0:
            cut = len(buf)
        self._carry = buf[cut:]
        self._walk(buf[:cut])

    def close(self) -> None:
        self._walk(self._carry)
        self._carry = b""

    def _walk(self, piece: bytes) -> None:
        at = 0
        table = self._table
        for m in _ODS_TAG.finditer(piece):
            if table is not None and table.in_text:
                table.text += m.start() - at
            at = m.end()
            end, name, attrs = m.groups()
            closing = end or attrs.endswith(b"/")  # calamine expands <x/> to <x></x>
            if table is None:
                if name == b"table:table" and not end:
                    attr = _attrs(attrs)
                    if b"table:name" in attr:
                        name_text = attr[b"table:name"].decode(errors="replace")
                        table = self._table = _OdsTable(name_text)
                        if closing:
                            self._close(table)
                            table = self._table = None
                continue
            if not end:
                table.start(name, attrs)
            if closing:
                if name == b"table:table":
                    self._close(table)
                    table = self._table = None
                else:
                    table.end(name)
        if table is not None and table.in_text:
            table.text += len(piece) - at

    def _close(self, table: _OdsTable) -> None:
        ext, cells = table.grid()
        self.tables.append((table.name, ext, cells))
        self.text += table.total_text


class _OdsTable:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = 0  # rows so far, repeats counted (capped as calamine caps them)
        self.read = 0  # cells calamine puts in its list of rows as read
        self.first_row = self.last_row = -1
        self.span_rows = 0  # rows from the first with a value to the last, repeats counted
        self.pending_rows = 0  # rows since the last with a value
        self.left, self.right = ODS_MAX_COLUMNS, -1
        self.total_text = 0
        self.in_text = False
        self.text = 0  # the text of the cell being read
        self._row_repeats = 0
        self._row_cols = 0
        self._row_text = 0
        self._row_filled = False
        self._empty_run = 0
        self._cell_repeats = 0
        self._cell_filled = False
        self._paragraphs = 0

    def start(self, name: bytes, attrs: bytes) -> None:
        if name == b"table:table-row":
            attr = _attrs(attrs)
            repeats = _number(attr.get(b"table:number-rows-repeated"), 1)
            self._row_repeats = min(repeats, ODS_MAX_ROWS - self.rows)
            self.rows += self._row_repeats
            self._row_cols = self._row_text = self._empty_run = 0
            self._row_filled = False
        elif name in _CELLS:
            attr = _attrs(attrs)
            repeats = min(_number(attr.get(b"table:number-columns-repeated"), 1),
                          ODS_MAX_COLUMNS)  # fmt: skip
            value = next((attr[k] for k in _VALUES if k in attr), None)
            string = attr.get(b"office:value-type") == b"string" and value is None
            self._cell_filled = value is not None or string or b"table:formula" in attr
            self.text = len(value or b"") + len(attr.get(b"table:formula", b""))
            self.in_text = string
            self._paragraphs = 0
            self._cell_repeats = repeats
        elif name == b"text:s" and self.in_text:
            self.text += _number(_attrs(attrs).get(b"text:c"), 1)
        elif name == b"text:p" and self.in_text:
            self._paragraphs += 1
            self.text += self._paragraphs > 1

    def end(self, name: bytes) -> None:
        if name in _CELLS:
            self.in_text = False
            cols = max(0, min(self._cell_repeats, ODS_MAX_COLUMNS - self._row_cols))
            if not self._cell_filled:
                self._empty_run += cols
                return
            start = self._row_cols + min(self._empty_run, ODS_MAX_COLUMNS - self._row_cols)
            cols = max(0, min(cols, ODS_MAX_COLUMNS - start))
            if cols:
                self.left = min(self.left, start)
                self.right = max(self.right, start + cols - 1)
                self._row_filled = True
            self._row_cols = start + cols
            self._empty_run = 0
            self._row_text += cols * (self.text + CELL_COST)
        elif name == b"table:table-row":
            self.read += self._row_cols
            self.total_text += self._row_text * (1 + self._row_repeats)
            if self._row_filled:
                if self.first_row < 0:
                    self.first_row = self.rows - self._row_repeats
                self.span_rows += self.pending_rows + self._row_repeats
                self.pending_rows = 0
                self.last_row = self.rows - 1
            elif self.first_row >= 0:
                self.pending_rows += self._row_repeats

    def grid(self) -> tuple[Extent, int]:
        ext = Extent()
        if self.first_row >= 0:
            ext.add(self.first_row, self.left)
            ext.add(self.last_row, self.right)
            return ext, self.read + self.span_rows * (self.right - self.left + 1)
        return ext, self.read


def _attrs(attrs: bytes) -> dict[bytes, bytes]:
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _ODS_ATTR.finditer(attrs)}  # fmt: skip


def _number(value: bytes | None, default: int) -> int:
    try:
        return max(int(value), 0) if value is not None else default
    except ValueError:
        return default
