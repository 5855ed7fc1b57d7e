"""CSV rows in batches, read from a text file's blocks of lines (`readers.TextLines`), in
bounded memory: a field may span lines, and is bounded like a line (`max_line_bytes`).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator

from config.pipeline import ReaderConfig
from processors.base import ProcessorError
from processors.readers import BATCH, Batch, TextLines, rows_per_batch


class CsvRows:
    """CSV rows in batches, from text blocks (`TextLines(..., blocks=True, crlf=True)`);
    `header` is the first row when the reader has one. A line break inside a quoted field
    is "\n", whether the file's lines end in "\n" or "\r\n"."""

    def __init__(self, lines: TextLines, reader: ReaderConfig, batch: int = BATCH) -> None:
        # a field may span lines; bound it like a line (the limit is the csv module's, so
        # it is set for every file: routes may differ)
        csv.field_size_limit(reader.max_line_bytes)
        self._lines = itertools.chain.from_iterable(map(_block_lines, lines))
        self._csv = csv.reader(self._lines, delimiter=reader.delimiter, quotechar=reader.quotechar)
        self._batch = batch
        self.header: list[str] | None = self._next_row() if reader.header else None
        self._width = len(self.header or ())  # the widest row so far

    def _next_row(self) -> list[str] | None:
        try:
            row = next(self._csv, None)
            return None if row is None else _mend_crlf([row])[0]
        except csv.Error as exc:
            raise ProcessorError(
                f"malformed CSV: {exc}", line=self._csv.line_num, error_type="CsvError"
            ) from None

    def __iter__(self) -> Iterator[Batch]:
        rdr = self._csv
        while True:
            start = rdr.line_num
            size = rows_per_batch(self._width, self._batch)
            try:
                rows = list(itertools.islice(rdr, size))
            except csv.Error as exc:
                raise ProcessorError(
                    f"malformed CSV: {exc}", line=rdr.line_num + 1, error_type="CsvError"
                ) from None
            if not rows:
                return
            self._width = max(self._width, max(map(len, rows)))
            if rdr.line_num - start == len(rows):  # a line a row: no quoted line breaks
                yield rows, range(start + 1, rdr.line_num + 1)
            else:
                yield _mend_crlf(rows), _last_lines(rows, start)


def _mend_crlf(rows: list[list[str]]) -> list[list[str]]:
    """`rows` with each "\r\n" in a value (a quoted line break) made "\n"."""
    for i, row in enumerate(rows):
        if any("\r\n" in value for value in row):
            rows[i] = [value.replace("\r\n", "\n") for value in row]
    return rows


def _last_lines(rows: list[list[str]], start: int) -> list[int]:
    """The line each row ends on, after line `start`: a row spans one line more for each
    line break its quoted fields hold (the csv module keeps them in the values, and the
    text was split on "\n" alone)."""
    origins = []
    line = start
    for row in rows:
        line += 1 + sum(field.count("\n") for field in row)
        origins.append(line)
    return origins


def _block_lines(batch: Batch) -> io.StringIO:
    # a block's lines, "\n" kept (csv needs them to rebuild quoted fields that span lines),
    # split in C as they are read
    return io.StringIO(batch[0][0])
