"""Outputs: terminal tags whose lines are written to `results/<rel_path>.<suffix>`.

A line is written as it is when it is a `str`, as one JSON line (orjson) when it is a
record (`dict`), and as one CSV row when it is a `list` — preceded by the input's CSV
header, if it had one. An output of format xlsx is a sheet of a workbook instead
(`processors.workbook`): outputs sharing a suffix share one workbook, opened as a binary
file and written out at the end of the input. The output file is opened only when its
first line arrives.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import IO, Any, BinaryIO, cast

import orjson

from formats.lineframes import write_frame
from processors.base import Line
from processors.excel import column_letters
from processors.workbook import Workbook

OpenOutput = Callable[..., IO[Any]]  # (suffix, binary=False) -> a new file for that output

Parts = list[tuple[list[Line], Sequence[int]]]  # lines with their origins, as they arrived


def in_input_order(parts: Parts) -> tuple[list[Line], list[int]]:
    """Lines of one chunk that arrived in several parts (along routes of different
    lengths), back in input-line order; a stable sort, so lines from one input line keep
    the order they were emitted in. The engine merges a tag's parts with it, a sink its
    rounds'."""
    vals: list[Line] = []
    origs: list[int] = []
    for v, o in parts:
        vals.extend(v)
        origs.extend(o)
    order = sorted(range(len(origs)), key=origs.__getitem__)
    return [vals[i] for i in order], [origs[i] for i in order]


class _Buffered:
    """An output of one file that buffers a chunk's lines, then writes them in input order;
    `lines` counts what it wrote."""

    __slots__ = ("lines", "parts", "suffix")

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.parts: Parts = []
        self.lines = 0

    def add(self, values: list[Line], origins: Sequence[int]) -> None:
        self.parts.append((values, origins))

    def _take(self) -> list[Line]:
        parts, self.parts = self.parts, []
        return parts[0][0] if len(parts) == 1 else in_input_order(parts)[0]

    def _take_numbered(self) -> tuple[list[Line], Sequence[int]]:
        parts, self.parts = self.parts, []
        return parts[0] if len(parts) == 1 else in_input_order(parts)


class LinesOutput(_Buffered):
    """A lines output: `results/<file>.<suffix>`, one line per value. A `numbered` one (it
    feeds a SQL sink, never a file of results/) keeps with each line the number of the
    input line it came from, which sinks/columns.py reads into the `line` column: its file
    is a numbered output (formats/lineframes.py)."""

    __slots__ = ("_header", "_numbered", "_open", "_stream")

    def __init__(
        self,
        suffix: str,
        open_output: OpenOutput,
        header: list[str] | None,
        numbered: bool = False,
    ) -> None:
        super().__init__(suffix)
        self._open = open_output
        self._stream: IO[Any] | None = None
        self._header = None if numbered else header
        self._numbered = numbered

    def write(self) -> None:
        if self._numbered:
            values, origins = self._take_numbered()
            if values:
                write_frame(self._opened(), _encode_lines(values), origins)
        elif values := self._take():
            first = self._stream is None
            stream = self._opened()
            if first and self._header is not None and isinstance(values[0], list):
                stream.write(_csv_line(self._header))
            stream.write(_encode(values))
        self.lines += len(values)

    def write_block(self, block: str, origins: Sequence[int]) -> None:
        """The whole text lines numbered `origins` (at least one) as one block, for the
        engine's copy routes: written as they are, with the "\n" a file's last line may
        lack."""
        text = block if block.endswith("\n") else block + "\n"
        if self._numbered:
            write_frame(self._opened(), text.encode(), origins)
        else:
            self._opened().write(text)
        self.lines += len(origins)

    def _opened(self) -> IO[Any]:
        if self._stream is None:
            if self._numbered:  # its frames are bytes
                self._stream = self._open(self.suffix, binary=True)
            else:
                self._stream = self._open(self.suffix)
        return self._stream


def _encode(values: list[Line]) -> str:
    first = values[0].__class__
    if first is str:
        try:
            return "\n".join(values) + "\n"
        except TypeError:
            pass
    elif first is dict and (lines := _records(values)) is not None:
        return lines.decode()
    return "".join(map(_encode_one, values))


def _encode_lines(values: list[Line]) -> bytes:
    """`_encode`'s lines in UTF-8, one line per value for sure (a numbered output's lines
    are found by their "\n"): a text or a CSV row that holds a line break is written as
    its JSON instead, on one line."""
    if values[0].__class__ is dict and (lines := _records(values)) is not None:
        return lines
    text = _encode(values).encode()
    if text.count(b"\n") == len(values):
        return text
    return b"".join(map(_one_line, values))


def _records(values: list[Line]) -> bytes | None:
    """Records as JSON lines (orjson, in one pass), or None when some value is not a
    record or needs `_encode_one`'s options."""
    if not all(v.__class__ is dict for v in values):
        return None
    try:
        return b"\n".join(map(orjson.dumps, values)) + b"\n"
    except TypeError:
        return None


def _one_line(value: Line) -> bytes:
    line = _encode_one(value)
    if line.count("\n") == 1:
        return line.encode()
    return orjson.dumps(value, default=str, option=orjson.OPT_APPEND_NEWLINE)


def _encode_one(value: Line) -> str:
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, list | tuple):
        return _csv_line(value)
    return orjson.dumps(
        value, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    ).decode()


def _csv_line(row: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


class BookFile:
    """The workbook of one xlsx suffix, opened at its first row."""

    def __init__(
        self, suffix: str, open_output: OpenOutput, summary: bool, sheets: list[str]
    ) -> None:
        self.suffix = suffix
        self._open = open_output
        self._summary = summary
        self._sheets = sheets  # the outputs' own sheets, in config order
        self._book: Workbook | None = None

    def workbook(self) -> Workbook:
        if self._book is None:
            stream = self._open(self.suffix, binary=True)
            self._book = Workbook(cast(BinaryIO, stream), self._summary, self._sheets)
        return self._book

    def close(self, aggregates: dict[str, Any]) -> None:
        if self._book is not None:
            self._book.close(aggregates)

    def discard(self) -> None:
        if self._book is not None:
            self._book.discard()


class SheetOutput(_Buffered):
    """An xlsx output: its records go to the sheet `sheet` of its workbook, or to a sheet
    per value of the field `sheet_by`. CSV rows are named by the header, text lines are
    a `line` field."""

    __slots__ = ("_book", "_header", "_sheet", "_sheet_by")

    def __init__(
        self, book: BookFile, sheet: str, sheet_by: str | None, header: list[str] | None
    ) -> None:
        super().__init__(book.suffix)
        self._book = book
        self._sheet = sheet
        self._sheet_by = sheet_by
        self._header = header

    def write(self) -> None:
        values = self._take()
        if not values:
            return
        records = [v if v.__class__ is dict else self._record(v) for v in values]
        book = self._book.workbook()
        by = self._sheet_by
        if by is None:
            book.add(self._sheet, records)
        else:  # runs of records with the same value go to their sheet together
            start = 0
            for i in range(1, len(records) + 1):
                if i == len(records) or records[i].get(by) != records[start].get(by):
                    value = records[start].get(by)
                    book.add("(none)" if value is None else str(value), records[start:i])
                    start = i
        self.lines += len(values)

    def _record(self, value: Line) -> dict[str, Any]:
        if isinstance(value, list | tuple):
            names = self._header or [column_letters(i) for i in range(len(value))]
            return dict(zip(names, value, strict=False))
        return {"line": value if isinstance(value, str) else str(value)}
