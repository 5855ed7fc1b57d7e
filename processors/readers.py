"""Turning a file's byte stream into batches of lines (or CSV rows), in bounded memory.

The daemon hands over a sequential byte stream; gzip is recognised by its magic bytes and
decompressed on top of it, as far as the reader's expansion limits allow. Text is decoded
incrementally, one chunk at a time (a UTF-8 byte order mark is not part of the first
line), and split on "\\n" ("\\r\\n" too); a batch is every complete line of one chunk. No
line may be longer than `max_line_bytes`, so memory stays at a few chunks, or a few times
that limit, whatever the file's size. Each batch comes with the source line numbers of its
values (`origins`), which the engine uses for errors and tracing.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from config.pipeline import ReaderConfig
from processors.base import ProcessorError

CHUNK = 1 << 18  # text per read: a chunk's lines and their copies stay in the CPU's cache
HEAD = 1 << 16
BATCH = 256  # lines (or CSV rows) per batch: a batch's records stay in the CPU cache
BATCH_CELLS = 1 << 16  # values per batch of wide rows: fewer rows, so memory is not width x 256
GZIP_MAGIC = b"\x1f\x8b"
GZIP_GRACE = 16 << 20  # max_gzip_ratio counts past this size: small repetitive files pass
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_NO_NUL_CHECK = ("utf-16", "utf-32")  # encodings where NUL bytes are ordinary text
_NO_LIMIT = 1 << 62
Batch = tuple[list[Any], range | list[int]]


class _Prefixed:
    """A read-only byte stream: bytes already read, then the rest of `stream`; `count` is
    how many bytes it has handed out."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._read(n)
        self.count += len(data)
        return data

    def _read(self, n: int) -> bytes:
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
        self._expanded = 0  # decompressed bytes read so far
        self._max_ratio: int | None = None
        self._max_bytes = self._check_at = _NO_LIMIT
        if self.gzipped:
            self._raw = _Prefixed(raw_head, stream)
            self._stream: Any = gzip.GzipFile(fileobj=cast(BinaryIO, self._raw), mode="rb")
            self.head = self._gzip_read(HEAD)
        else:
            self._stream = stream
            self.head = raw_head
        self._pending = self.head

    def limit(self, reader: ReaderConfig) -> None:
        """From now on, fail a gzip file that expands beyond the reader's limits."""
        self._max_ratio = reader.max_gzip_ratio
        mb = reader.max_decompressed_mb
        self._max_bytes = _NO_LIMIT if mb is None else mb << 20
        self._check_at = min(self._max_bytes, _NO_LIMIT if self._max_ratio is None else GZIP_GRACE)

    def skip(self, n: int) -> None:
        """Drop the first `n` bytes of what is still to be read (at most `head`'s)."""
        self._pending = self._pending[n:]

    def _gzip_read(self, n: int) -> bytes:
        try:
            data = self._stream.read(n)
        except _GZIP_ERRORS as exc:
            raise ProcessorError(f"corrupt gzip data: {exc}", error_type="BadGzipFile") from None
        self._expanded += len(data)
        if self._expanded > self._check_at:  # once per chunk, and only past a limit
            self._check_expansion()
        return data

    def _check_expansion(self) -> None:
        if self._expanded > self._max_bytes:
            beyond, key = f"{self._max_bytes >> 20} MiB", "max_decompressed_mb"
        elif self._max_ratio is not None and self._expanded > self._max_ratio * self._raw.count:
            beyond, key = f"{self._max_ratio} times its compressed size", "max_gzip_ratio"
        else:
            return
        raise ProcessorError(
            f"gzip expands beyond {beyond}: {self._expanded} bytes from {self._raw.count} "
            f"compressed bytes read (reader.{key})",
            error_type="GzipExpansion",
        )

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


def _utf8_size(text: str) -> int:
    """How many bytes `text` takes in UTF-8 (as outputs are written): what max_line_bytes
    measures. O(1) for ASCII text."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _may_hold_longer(text: str, longest: int) -> bool:
    """Whether a line of `text` may have more than `longest` characters (False: none has),
    at a cost per window rather than per line: such a line covers a whole window of
    `longest // 2 + 1` characters, so if every window holds a "\\n" there is none (one
    search per window: 16 for a 256 KiB chunk and a 32 KiB limit)."""
    width = longest // 2 + 1
    find = text.find
    return any(find("\n", at, at + width) < 0 for at in range(0, len(text) - width + 1, width))


def _cut(line: str, limit: int) -> str:
    """The longest start of `line` that takes at most `limit` bytes in UTF-8."""
    if line.isascii():
        return line[:limit]
    head = line[:limit].encode("utf-8", "surrogatepass")[:limit]
    # not final: a character cut in two stays in the decoder, out of the line
    return codecs.getincrementaldecoder("utf-8")("surrogatepass").decode(head)


class TextLines:
    """A text file's lines, in batches of (lines, origins); raises ProcessorError on
    undecodable bytes and, unless `long_lines` says otherwise, on a line longer than
    `max_line_bytes`. `truncated` and `skipped` count the long lines it cut or left out.
    With `blocks`, each batch is one text block of a chunk's complete lines, "\n" kept
    (what the CSV reader parses, without a string per line to split and join again).
    "\r\n" becomes "\n", except in blocks with `crlf`: the csv module ends a row at
    either, and `CsvRows` mends the few inside quoted fields."""

    def __init__(
        self, source: Source, reader: ReaderConfig, blocks: bool = False, crlf: bool = False
    ) -> None:
        if blocks and reader.long_lines != "fail":
            raise ValueError("text blocks keep every line whole: long_lines must be 'fail'")
        self._source = source
        self._reader = reader
        self._blocks = blocks
        self._crlf = blocks and crlf
        self.truncated = 0
        self.skipped = 0
        source.limit(reader)
        self._bom = bom_length(source.head, reader.encoding)
        source.skip(self._bom)

    def __iter__(self) -> Iterator[Batch]:
        source, reader = self._source, self._reader
        decoder = codecs.getincrementaldecoder(reader.encoding)(reader.errors)
        check_nul = not codecs.lookup(reader.encoding).name.startswith(_NO_NUL_CHECK)
        # no line of this many characters can take more than max_line_bytes in UTF-8
        short = reader.max_line_bytes // 4
        skip = reader.long_lines == "skip"
        done = 0  # lines read so far (yielded or skipped)
        offset = self._bom  # bytes decoded so far
        pending = ""  # the start of the line the last chunk ended in
        held: list[str] = []  # the chunks since, inside that line (none holds a "\n")
        held_bytes = 0  # the UTF-8 size of pending and held
        cutting = False  # dropping the rest of a long line being truncated or skipped
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
            if cutting:
                end = text.find("\n")
                if end < 0:
                    if not final:
                        continue
                    text, end = "\n", 0  # the file ends inside the long line: so does it
                cutting = False
                if skip:
                    text = text[end + 1 :]
                    done += 1  # the skipped line's number
                else:
                    text = text[end:]  # its "\n" ends the start that was kept
            if not final and "\n" not in text:  # inside a line longer than a chunk: its
                if not held:  # pieces are joined once, at its end, not copied per chunk
                    held_bytes = _utf8_size(pending)
                held.append(text)
                held_bytes += _utf8_size(text)
                if held_bytes - text.endswith("\r") <= reader.max_line_bytes:
                    continue
                text = ""  # too long already: joined now, and bounded below
            if held:
                text = "".join((pending, *held, text))
                held = []
            elif pending:
                text = pending + text
            if "\r" in text and not self._crlf:
                text = text.replace("\r\n", "\n")
            if self._blocks:
                block, pending = self._block(text, final, done)
                count = block.count("\n") + (not block.endswith("\n") and bool(block))
                if block:
                    yield [block], range(done + 1, done + 1 + count)
                done += count
                if final:
                    return
                continue
            lines = text.split("\n")
            pending = lines.pop()
            if final and pending:
                # a last line without "\n" (keep a lone trailing "\r" out of it too)
                lines.append(pending[:-1] if pending.endswith("\r") else pending)
                pending = ""
            numbers: range | list[int] = range(done + 1, done + 1 + len(lines))
            done += len(lines)
            if len(text) > short:  # per chunk: only so long a chunk can hold a long line
                lines, numbers = self._bound(lines, numbers, text)
                if pending and len(pending) > short:
                    pending, cutting = self._bound_pending(pending, done + 1)
            # small batches: each one's records stay in the CPU cache through every node
            for at in range(0, len(lines), BATCH):
                yield lines[at : at + BATCH], numbers[at : at + BATCH]
            if final:
                return

    def _block(self, text: str, final: bool, done: int) -> tuple[str, str]:
        """`text`'s complete lines (every one of them, at the end of the file) and the
        incomplete rest; fails as `__iter__` does on a line that is too long."""
        cut = text.rfind("\n") + 1
        block, pending = text[:cut], text[cut:]
        if final and pending:
            block += pending[:-1] if pending.endswith("\r") else pending
            pending = ""
        if len(text) > self._reader.max_line_bytes // 4:  # only so long a text can hold one
            lines = block.split("\n")
            self._bound(lines, range(done + 1, done + 1 + len(lines)), text)
            if len(pending) > self._reader.max_line_bytes // 4:
                self._bound_pending(pending, done + len(lines))
        return block, pending

    def _bound(
        self, lines: list[str], numbers: range | list[int], text: str
    ) -> tuple[list[str], range | list[int]]:
        """The chunk's lines (split from `text`) with the long ones failed, truncated or
        skipped."""
        limit = self._reader.max_line_bytes
        short = limit // 4
        longest = limit if text.isascii() else short  # characters a line may have for sure
        if not _may_hold_longer(text, longest) or max(map(len, lines), default=0) <= longest:
            return lines, numbers
        long = [i for i, line in enumerate(lines) if len(line) > short and _utf8_size(line) > limit]
        if not long:
            return lines, numbers
        if self._reader.long_lines == "fail":
            raise self._too_long(numbers[long[0]])
        if self._reader.long_lines == "truncate":
            for i in long:
                lines[i] = _cut(lines[i], limit)
            self.truncated += len(long)
            return lines, numbers
        self.skipped += len(long)
        left_out = set(long)
        keep = [i for i in range(len(lines)) if i not in left_out]
        return [lines[i] for i in keep], [numbers[i] for i in keep]

    def _bound_pending(self, pending: str, number: int) -> tuple[str, bool]:
        """The incomplete last line, failed, cut (and the rest of it to be dropped: True) or
        left out if it is already too long; kept whole otherwise."""
        limit = self._reader.max_line_bytes
        if _utf8_size(pending) - pending.endswith("\r") <= limit:  # its "\r\n" may be split
            return pending, False
        if self._reader.long_lines == "fail":
            raise self._too_long(number)
        if self._reader.long_lines == "truncate":
            self.truncated += 1
            return _cut(pending, limit), True
        self.skipped += 1
        return "", True

    def _too_long(self, number: int) -> ProcessorError:
        return ProcessorError(
            f"line {number} is longer than {self._reader.max_line_bytes} bytes "
            "(reader.max_line_bytes)",
            line=number,
            error_type="LineTooLong",
        )


def rows_per_batch(width: int, batch: int = BATCH) -> int:
    """How many rows of `width` values make a batch: `batch`, or fewer for wide rows."""
    return batch if width * batch <= BATCH_CELLS else max(1, BATCH_CELLS // width)
