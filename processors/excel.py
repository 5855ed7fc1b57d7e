"""The Excel reader: a workbook's rows as records, sheet after sheet (python-calamine).

calamine reads `.xlsx`, `.xlsm`, `.xlsb`, `.xls` and `.ods`, and it needs the whole file
(a zip or OLE container is read from its end) and loads a whole sheet at a time: memory
grows with the workbook, so the file is capped by `reader.max_workbook_mb` before anything
is parsed. Each row becomes a record: the header row gives the field names (column letters
without a header), numbers stay numbers (whole ones become ints), dates and times become
ISO-8601 text, empty cells null; `sheet_field` and `row_field` add the sheet's name and the
row's number in it. A password-protected or unreadable workbook is a data error.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import python_calamine as calamine

from config.pipeline import ReaderConfig
from processors import excel_limits
from processors.base import ProcessorError
from processors.readers import CHUNK, Batch, Source, rows_per_batch

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (and encrypted .xlsx) containers
ZIP_MAGIC = b"PK\x03\x04"
_ZIP_WORKBOOK = (b"xl/", b"application/vnd.oasis.opendocument.spreadsheet")
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # its OLE directory entry's name
_MAX_EXACT = 1 << 53  # floats beyond this are not exact integers


def is_workbook(head: bytes) -> bool:
    """Whether a file's first bytes are an Excel or OpenDocument workbook's: an OLE
    container, or a zip whose first entries are a workbook's (`xl/…`, an ODS mimetype)."""
    if head.startswith(OLE_MAGIC):
        return True
    return head.startswith(ZIP_MAGIC) and any(mark in head for mark in _ZIP_WORKBOOK)


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: a column's name in a sheet without a header row."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_value(value: Any) -> Any:
    """A calamine cell as a record value: whole floats as ints, dates as ISO-8601."""
    kind = value.__class__
    if kind is float:
        return int(value) if value.is_integer() and -_MAX_EXACT < value < _MAX_EXACT else value
    if kind is str:
        return value if value else None
    if kind is dt.timedelta:
        return f"PT{value.total_seconds():g}S"
    if kind in (dt.datetime, dt.date, dt.time):
        return value.isoformat()
    return value


def field_names(row: list[Any]) -> list[str]:
    """Header cells as unique field names (an empty one is its column's letters)."""
    names: list[str] = []
    seen: set[str] = set()
    for i, cell in enumerate(row):
        value = cell_value(cell)
        name = column_letters(i) if value is None else str(value).strip() or column_letters(i)
        base, n = name, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


class WorkbookRows:
    """A workbook's records in batches; `sheets` counts the records of each sheet read."""

    def __init__(self, source: Source, reader: ReaderConfig) -> None:
        self._reader = reader
        self.sheets: dict[str, int] = {}
        data = _read_all(source, reader.max_workbook_mb)
        excel_limits.check(data, reader)  # before calamine allocates what the file claims
        self._book = _open(data)
        names = [m.name for m in self._book.sheets_metadata
                 if m.typ == calamine.SheetTypeEnum.WorkSheet]  # fmt: skip
        if reader.sheets is None:
            self._names = names
        else:
            missing = [s for s in reader.sheets if s not in names]
            if missing:
                raise ProcessorError(
                    f"the workbook has no sheet {missing[0]!r} (it has: {', '.join(names)})",
                    error_type="SheetNotFound",
                )
            self._names = list(reader.sheets)

    def __iter__(self) -> Iterator[Batch]:
        origin = 0  # records are numbered across sheets: their origins stay in order
        for name in self._names:
            self.sheets[name] = 0
            for records in self._sheet(name):
                self.sheets[name] += len(records)
                yield records, range(origin + 1, origin + 1 + len(records))
                origin += len(records)

    def _sheet(self, name: str) -> Iterator[list[dict[str, Any]]]:
        sheet = _guard(lambda: self._book.get_sheet_by_name(name))
        if sheet.start is None:
            return
        reader = self._reader
        first_row = sheet.start[0] + 1  # Excel's number of the first row calamine gives
        rows = _guard(sheet.iter_rows)
        fields: list[str] | None = None
        if reader.header:
            header = next(rows, None)
            if header is None:
                return
            fields = field_names(header)
            first_row += 1
        meta = [(k, v) for k, v in ((reader.sheet_field, name),) if k is not None]
        batch: list[dict[str, Any]] = []
        for number, row in enumerate(rows, first_row):
            values = [cell_value(c) for c in row]
            if all(v is None for v in values):
                continue
            if fields is None or len(values) > len(fields):
                fields = (fields or []) + [column_letters(i) for i in
                                           range(len(fields or ()), len(values))]  # fmt: skip
            record: dict[str, Any] = dict(meta)
            if reader.row_field is not None:
                record[reader.row_field] = number
            record.update(zip(fields, values, strict=False))
            batch.append(record)
            if len(batch) >= rows_per_batch(len(fields)):
                yield batch
                batch = []
        if batch:
            yield batch


def _read_all(source: Source, max_mb: int) -> bytes:
    """The rest of the file, in memory (calamine needs all of it), at most `max_mb` MiB."""
    limit = max_mb << 20
    chunks: list[bytes] = []
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ProcessorError(
                f"workbook larger than {max_mb} MiB (reader.max_workbook_mb): the Excel "
                "reader holds a whole workbook and sheet in memory",
                error_type="WorkbookTooLarge",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _open(data: bytes) -> calamine.CalamineWorkbook:
    try:
        return _guard(lambda: calamine.CalamineWorkbook.from_filelike(io.BytesIO(data)))
    except ProcessorError:
        # an encrypted .xlsx is an OLE container holding an EncryptedPackage stream, which
        # calamine does not recognise as a workbook at all
        if data.startswith(OLE_MAGIC) and _ENCRYPTED in data:
            raise _protected() from None
        raise


def _protected() -> ProcessorError:
    return ProcessorError(
        "the workbook is password-protected: folderd cannot read encrypted workbooks",
        error_type="PasswordProtected",
    )


def _guard(call: Any) -> Any:
    """Run a calamine call; whatever it raises is the workbook's fault: a data error."""
    try:
        return call()
    except calamine.PasswordError:
        raise _protected() from None
    except Exception as exc:  # calamine raises CalamineError, XmlError, ValueError… for bad bytes
        if exc.__class__ is calamine.CalamineError and str(exc).startswith("Cannot detect"):
            reason = "not a workbook calamine can read (corrupt, truncated or encrypted)"
        else:
            reason = f"{exc.__class__.__name__}: {exc}"
        raise ProcessorError(f"unreadable workbook: {reason}", error_type="BadWorkbook") from None
