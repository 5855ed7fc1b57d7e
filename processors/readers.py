"""Turning a file's byte stream into batches of lines (or CSV rows), in constant memory.

The daemon hands over a sequential byte stream; gzip is recognised by its magic bytes and
decompressed on top of it. Text is decoded incrementally, one chunk at a time (a UTF-8
byte order mark is not part of the first line), and split on "\\n" ("\\r\\n" too); a
batch is every complete line of one chunk, so memory stays at a few chunks whatever the
file's size. Each batch comes with the source line numbers of its values (`origins`),
which the engine uses for errors and tracing.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import itertools
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from config.pipeline import ReaderConfig
from processors.base import ProcessorError

CHUNK = 1 << 20
HEAD = 1 << 16
BATCH = 256  # lines per batch
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_NO_NUL_CHECK = ("utf-16", "utf-32")  # encodings where NUL bytes are ordinary text
Batch = tuple[list[Any], range | list[int]]


class _Prefixed:
    """A read-only byte stream: bytes already read, then the rest of `stream`."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
                if n < 0:
                    return data + self._stream.read()
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._stream.read(n)


class Source:
    """A file's decompressed bytes, with its first bytes kept for routing (`head`)."""

    def __init__(self, stream: BinaryIO) -> None:
        raw_head = stream.read(HEAD)
        self.gzipped = raw_head[:2] == GZIP_MAGIC
        if self.gzipped:
            self._stream: Any = gzip.GzipFile(fileobj=_Prefixed(raw_head, stream), mode="rb")
            self.head = self._gzip_read(HEAD)
        else:
            self._stream = stream
            self.head = raw_head
        self._pending = self.head

    def skip(self, n: int) -> None:
        """Drop the first `n` bytes of what is still to be read (at most `head`'s)."""
        self._pending = self._pending[n:]

    def _gzip_read(self, n: int) -> bytes:
        try:
            return self._stream.read(n)
        except _GZIP_ERRORS as exc:
            raise ProcessorError(f"corrupt gzip data: {exc}", error_type="BadGzipFile") from None

    def read(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._gzip_read(n) if self.gzipped else self._stream.read(n)


def bom_length(head: bytes, encoding: str) -> int:
    """The length of the byte order mark a UTF-8 text starts with (0 if none, or if the
    text is in another encoding): it is not part of the first line."""
    if head.startswith(codecs.BOM_UTF8) and codecs.lookup(encoding).name == "utf-8":
        return len(codecs.BOM_UTF8)
    return 0


def text_batches(source: Source, reader: ReaderConfig) -> Iterator[Batch]:
    """Yield (lines, origins) for every chunk; raise ProcessorError on undecodable bytes."""
    decoder = codecs.getincrementaldecoder(reader.encoding)(reader.errors)
    check_nul = not codecs.lookup(reader.encoding).name.startswith(_NO_NUL_CHECK)
    done = 0  # complete lines yielded so far
    offset = bom_length(source.head, reader.encoding)  # bytes decoded so far
    source.skip(offset)
    pending = ""
    while True:
        chunk = source.read(CHUNK)
        final = not chunk
        if check_nul and b"\0" in chunk:
            at = chunk.index(b"\0")
            raise ProcessorError(
                f"binary input: NUL byte at byte offset {offset + at}",
                line=done + 1 + pending.count("\n") + chunk.count(b"\n", 0, at),
                error_type="BinaryInput",
            )
        buffered = decoder.getstate()[0]
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            data = buffered + chunk
            raise ProcessorError(
                f"cannot decode as {reader.encoding} at byte offset "
                f"{offset - len(buffered) + exc.start}: {exc.reason}",
                line=done + 1 + data.count(b"\n", 0, exc.start),
                error_type="UnicodeDecodeError",
            ) from None
        offset += len(chunk)
        if pending:
            text = pending + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        pending = lines.pop()
        if final and pending:
            # a last line without "\n" (keep a lone trailing "\r" out of it too)
            lines.append(pending[:-1] if pending.endswith("\r") else pending)
            pending = ""
        # small batches: each one's records stay in the CPU cache through every node
        for at in range(0, len(lines), BATCH):
            part = lines[at : at + BATCH]
            yield part, range(done + 1, done + 1 + len(part))
            done += len(part)
        if final:
            return


class CsvRows:
    """CSV rows in batches; `header` is the first row when the reader has one."""

    def __init__(self, source: Source, reader: ReaderConfig, batch: int = 4096) -> None:
        self._lines = _with_newlines(text_batches(source, reader))
        self._csv = csv.reader(self._lines, delimiter=reader.delimiter, quotechar=reader.quotechar)
        self._batch = batch
        self.header: list[str] | None = self._next_row() if reader.header else None

    def _next_row(self) -> list[str] | None:
        try:
            return next(self._csv, None)
        except csv.Error as exc:
            raise ProcessorError(
                f"malformed CSV: {exc}", line=self._csv.line_num, error_type="CsvError"
            ) from None

    def __iter__(self) -> Iterator[Batch]:
        rdr = self._csv
        while True:
            rows: list[Any] = []
            origins: list[int] = []
            try:
                for row in itertools.islice(rdr, self._batch):
                    rows.append(row)
                    origins.append(rdr.line_num)
            except csv.Error as exc:
                raise ProcessorError(
                    f"malformed CSV: {exc}", line=rdr.line_num + 1, error_type="CsvError"
                ) from None
            if not rows:
                return
            yield rows, origins


def _with_newlines(batches: Iterator[Batch]) -> Iterator[str]:
    # csv needs the line ends to rebuild quoted fields that span lines
    for lines, _ in batches:
        for line in lines:
            yield line + "\n"
