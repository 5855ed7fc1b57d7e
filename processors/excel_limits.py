"""What a workbook will cost calamine, checked before calamine reads it.

A workbook's file size says little about what reading it takes: a 1.5 KB `.xlsx` holding
cells `A1` and `ZZ1000000` makes calamine allocate a 22 GB grid and abort, a 1.5 MB one
unpacks to a 1.5 GB shared string, 826 KB hold 20 million shared strings (1.1 GB). So
before calamine sees a workbook, its parts are unpacked once, in chunks, counting what
they really unpack to (a zip's declared sizes may lie) and scanning the sheets for the
grid each spans and the text its cells will copy (`processors._sheet_scan`; `_ods_scan`
for OpenDocument). A workbook over a limit fails with `WorkbookTooLarge` naming the limit
(`reader.<key>`):

- `max_unpacked_mb`, `max_unpacked_ratio`: what the zip's parts unpack to, in all and per
  byte of the file (past the first 16 MiB);
- `max_sheet_cells`: the grid of a sheet, first to last cell (an `.xls` or `.ods` is read
  whole when opened: there it is all sheets' grids together);
- `max_text_mb`: the shared strings (each with calamine's 48-byte overhead) plus the text
  they put into the cells of a sheet (a string once per cell that shows it).

XML entities are never expanded here (the scans are regexes over bytes) and calamine
refuses the ones it does not know, so an entity bomb is an unreadable workbook.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import Protocol

from config.pipeline import ReaderConfig
from processors import _ods_scan as ods_scan
from processors import _sheet_scan as scan
from processors._xls_scan import xls_book
from processors.base import ProcessorError

CHUNK = 1 << 20
GRACE = 16 << 20  # max_unpacked_ratio counts past this many unpacked bytes
MAX_PARTS = 10_000  # zip entries: a workbook has tens; each costs zipfile a few objects
_EOCD = b"PK\x05\x06"
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError)


class _Sink(Protocol):
    def feed(self, chunk: bytes) -> None: ...


def too_large(message: str) -> ProcessorError:
    return ProcessorError(message, error_type="WorkbookTooLarge")


def check(data: bytes, reader: ReaderConfig) -> None:
    """Raise `WorkbookTooLarge` if reading `data` would take calamine past a limit of
    `reader`'s; an OLE file that is no `.xls` workbook (an encrypted `.xlsx`) is left to
    calamine."""
    if data.startswith(b"PK"):
        _Zip(data, reader).check()
    elif (book := xls_book(data)) is not None:
        _all_cells(reader, book.sheets, book.cells)
        if book.text > reader.max_text_mb << 20:
            raise _text_error(reader, "the workbook")


def _all_cells(reader: ReaderConfig, sheets: list[tuple[str, scan.Extent]], cells: int) -> None:
    """An `.xls` or `.ods` is read whole when it opens: its sheets' cells count together."""
    if cells > reader.max_sheet_cells:
        name, ext = max(sheets, key=lambda s: s[1].cells, default=("?", scan.Extent()))
        raise too_large(
            f"the workbook's sheets span {cells:,} cells together (the largest, {name!r}, "
            f"{ext.ref()}): more than {reader.max_sheet_cells:,} (reader.max_sheet_cells; "
            "calamine reads every sheet of an .xls or .ods when it opens)"
        )


def _cells(reader: ReaderConfig, what: str, extent: scan.Extent) -> None:
    cells = extent.cells
    if cells > reader.max_sheet_cells:
        raise too_large(
            f"{what} spans {extent.ref()}, {cells:,} cells: more than {reader.max_sheet_cells:,} "
            "(reader.max_sheet_cells; calamine holds a sheet as one grid, first to last cell)"
        )


class _Zip:
    """An `.xlsx`/`.xlsm`/`.xlsb`/`.ods`: every part unpacked and counted, sheets scanned."""

    def __init__(self, data: bytes, reader: ReaderConfig) -> None:
        self.reader = reader
        self.size = len(data)
        self.unpacked = 0
        self.max_bytes = reader.max_unpacked_mb << 20
        ratio = reader.max_unpacked_ratio
        self.max_ratio = None if ratio is None else max(GRACE, ratio * len(data))
        parts = _part_count(data)
        if parts > MAX_PARTS:
            raise too_large(f"the workbook has {parts:,} zip parts: more than {MAX_PARTS:,}")
        self.zip = _guard(lambda: zipfile.ZipFile(io.BytesIO(data)))
        self.strings = scan.SharedStrings()
        self.max_text = reader.max_text_mb << 20

    def check(self) -> None:
        sheets: list[tuple[str, scan.XlsxSheet]] = []
        ods: list[ods_scan.OdsContent] = []
        for info in self.zip.infolist():
            name = info.filename
            sink: _Sink | None = None
            if name.endswith("sharedStrings.xml"):
                sink = _Budgeted(self.strings, self._text, name)
            elif "worksheets/" in name and name.endswith(".xml") and "_rels" not in name:
                sheet = scan.XlsxSheet(self.strings)
                sheets.append((name, sheet))
                sink = sheet
            elif name == "content.xml":
                content = ods_scan.OdsContent(self.reader.max_sheet_cells)
                ods.append(content)
                sink = content
            try:
                self._unpack(info, sink)
            except scan.NeedsSlowScan:
                slow = scan.XlsxSheet(self.strings, slow=True)
                sheets[-1] = (name, slow)
                self._unpack(info, slow, counted=True)
        for name, sheet in sheets:
            _cells(self.reader, f"sheet {name}", sheet.extent)
            self._text(self.strings.cost + sheet.text, name)
        for content in ods:
            tables = [(name, extent) for name, extent, _ in content.tables]
            _all_cells(self.reader, tables, sum(cells for *_, cells in content.tables))
            self._text(content.text, "content.xml")

    def _unpack(self, info: zipfile.ZipInfo, sink: _Sink | None, counted: bool = False) -> None:
        def read() -> None:
            with self.zip.open(info) as part:
                while chunk := part.read(CHUNK):
                    if not counted:
                        self._count(len(chunk), info.filename)
                    if sink is not None:
                        sink.feed(chunk)
                if sink is not None and hasattr(sink, "close"):
                    sink.close()

        _guard(read)

    def _count(self, n: int, name: str) -> None:
        self.unpacked += n
        if self.unpacked > self.max_bytes:
            raise too_large(
                f"the workbook unpacks to more than {self.reader.max_unpacked_mb} MiB "
                f"(reader.max_unpacked_mb), at {name}"
            )
        if self.max_ratio is not None and self.unpacked > self.max_ratio:
            raise too_large(
                f"the workbook unpacks to more than {self.reader.max_unpacked_ratio} times its "
                f"{self.size:,} bytes (reader.max_unpacked_ratio), at {name}"
            )

    def _text(self, cost: int, name: str) -> None:
        if cost > self.max_text:
            raise _text_error(self.reader, name)


def _text_error(reader: ReaderConfig, what: str) -> ProcessorError:
    return too_large(
        f"{what} holds more than {reader.max_text_mb} MiB of text (reader.max_text_mb: the "
        "shared strings, and each again in every cell that shows it)"
    )


class _Budgeted:
    """A sink that checks a budget after each chunk (a table of strings growing)."""

    def __init__(self, sink: scan.SharedStrings, check: Callable[[int, str], None], name: str):
        self._sink = sink
        self._check = check
        self._name = name

    def feed(self, chunk: bytes) -> None:
        self._sink.feed(chunk)
        self._check(self._sink.cost, self._name)


def _part_count(data: bytes) -> int:
    """The entry count a zip's end record claims (zip64: 0xFFFF, more than a workbook
    has), before zipfile builds an object for each."""
    at = data.rfind(_EOCD, max(0, len(data) - (1 << 16) - 22))
    if at < 0 or at + 22 > len(data):
        return 0  # not a zip zipfile can read: it says so
    return int(struct.unpack_from("<H", data, at + 10)[0])


def _guard(call: Callable[[], object]) -> zipfile.ZipFile:
    try:
        return call()  # type: ignore[return-value]
    except _ZIP_ERRORS as exc:
        raise ProcessorError(
            f"unreadable workbook: {exc.__class__.__name__}: {exc}", error_type="BadWorkbook"
        ) from None
