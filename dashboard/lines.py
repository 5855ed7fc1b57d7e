"""A text file's lines, a page at a time, in bounded memory and time whatever its size.

The file page shows an input's or an output's lines in place: the first ones, the next N,
from a line number on, or only those containing a text. A result may be gigabytes, so a
file is never read whole: it is read in 1 MiB chunks from a byte offset, a line keeps at
most `MAX_LINE` bytes (the rest is counted, not kept), and one request reads at most
`budget` bytes. A request that runs out of budget before its line (or its matches) answers
with the line it reached, and the next request goes on from there.

Going on is cheap because each file version keeps a sparse index: the line number of the
byte at each chunk boundary read so far (at most `MAX_POINTS` of them, spaced further
apart in a bigger file). A jump seeks to the nearest known point before its line and
counts newlines from there; a point may lie inside a line, so even a single 1 GB line is
crossed in steps. Indexes live in a small LRU keyed by the file's identity (device, inode,
size, mtime): a replaced result gets a new one.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import stat
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20
MAX_LINE = 4096  # bytes of a line shown
MAX_MATCH = 1 << 20  # a filter looks for its text within a line's first MAX_MATCH bytes
BUDGET = 128 << 20  # bytes one request reads at most (a fraction of a second)
MAX_POINTS = 1 << 16  # index points per file version
CACHED_FILES = 64
SNIFF = 8192  # bytes looked at to tell text from binary
FIRST_READ = 64 << 10  # the first read of a page's lines: a page of 10 lines reads no more
SCANS = 4  # requests reading at once (each holds a few chunks); others wait, then give up
WAIT_S = 5.0


class NotRegular(OSError):
    """The path is not a regular file (any more): never opened for reading."""


class Busy(Exception):
    """Every reading slot stayed taken for `wait_s` seconds: ask again later."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as `sed -n Np` counts
    text: str
    more: int  # bytes of the line not shown
    more_known: bool = True  # False: the request stopped inside the line; at least `more`


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    start: int  # the line asked for
    next: int | None  # the line to ask for next (same count and query); None: at the end
    partial: bool  # the budget ran out before `count` lines: ask for `next` to go on
    size: int  # the file's size in bytes
    position: int  # how far into the file this request got, in bytes
    total: int | None  # the file's number of lines, once a request reached its end
    binary: bool = False  # NUL bytes at its start: not shown as text


@dataclass
class _Index:
    """Points of one file version: the byte at `offsets[i]` is in line `lines[i]`, and
    `starts[i]` says whether it is that line's first byte."""

    step: int
    lines: array[int] = field(default_factory=lambda: array("q", [1]))
    offsets: array[int] = field(default_factory=lambda: array("q", [0]))
    starts: array[int] = field(default_factory=lambda: array("b", [1]))
    total: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def nearest(self, line: int) -> tuple[int, int]:
        """Where to read on from to find the start of `line`: that start if known, else
        the furthest point in an earlier line."""
        i = bisect.bisect_left(self.lines, line)
        if i < len(self.lines) and self.lines[i] == line and self.starts[i]:
            return line, int(self.offsets[i])
        return int(self.lines[i - 1]), int(self.offsets[i - 1])

    def add(self, line: int, offset: int, start: bool) -> None:
        if offset >= self.offsets[-1] + self.step and line >= self.lines[-1]:
            self.lines.append(line)
            self.offsets.append(offset)
            self.starts.append(start)


class Indexes:
    """The sparse line indexes of the last `CACHED_FILES` file versions read."""

    def __init__(
        self,
        budget: int = BUDGET,
        chunk: int = CHUNK,
        long: int = MAX_MATCH,
        scans: int = SCANS,
        wait_s: float = WAIT_S,
    ) -> None:
        self.budget, self.chunk, self.long, self.wait_s = budget, chunk, long, wait_s
        self._slots = threading.BoundedSemaphore(scans)
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, int, int, int], _Index] = OrderedDict()

    def _index(self, st: os.stat_result) -> _Index:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                step = max(self.chunk, st.st_size // MAX_POINTS)
                found = self._cache[key] = _Index(step=step)
                while len(self._cache) > CACHED_FILES:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return found

    def page(self, path: Path, start: int, count: int, query: str = "") -> Page:
        """`count` lines from line `start` (1-based), or with `query` the next `count`
        lines from there containing it (ASCII letters in any case). Busy when too many
        requests are reading already."""
        with self.slot():
            return self._page(path, start, count, query)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """One of the `scans` reading slots, held for a request's reading; Busy when none
        frees within `wait_s`."""
        if not self._slots.acquire(timeout=self.wait_s):
            raise Busy("as many files as allowed are being read for other requests: try again")
        try:
            yield
        finally:
            self._slots.release()

    def _page(self, path: Path, start: int, count: int, query: str) -> Page:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegular(f"{path.name}: not a regular file")
            head = os.pread(fd, SNIFF, 0)
            if b"\0" in head:
                return Page([], start, None, False, st.st_size, 0, None, binary=True)
            index = self._index(st)
            with index.lock:
                scan = _Scan(fd, index, self, st.st_size)
                return scan.page(max(1, start), max(1, count), query.encode().lower())
        finally:
            os.close(fd)


class _Scan:
    """One request's reading of one file: where it is, the line it is in, its budget.

    Invariant: the byte at `pos` belongs to line `line` (a newline belongs to the line it
    ends), which is what every index point records too."""

    def __init__(self, fd: int, index: _Index, limits: Indexes, size: int) -> None:
        self.fd, self.index, self.size = fd, index, size
        self.chunk, self.long = limits.chunk, limits.long
        # Enough to cross from the nearest point to any line's start (points are at most
        # step + long + 2 chunks apart) and then to take that line or reach `long` bytes
        # of it: so every request moves on, however small the budget is set.
        self.left = max(limits.budget, 2 * self.long + 3 * self.chunk + index.step + 1)
        self.line, self.pos = 1, 0
        self.eof = False

    def _read(self, at: int, size: int = 0) -> bytes:
        data = os.pread(self.fd, min(size or self.chunk, max(self.left, 1)), at)
        self.left -= len(data)
        self.eof = not data
        return data

    def _moved(self, newlines: int, nbytes: int, start: bool) -> None:
        """On by `nbytes` holding `newlines`; `start`: now at a line's first byte."""
        self.line += newlines
        self.pos += nbytes
        self.index.add(self.line, self.pos, start)

    def page(self, start: int, count: int, query: bytes) -> Page:
        lines: list[Line] = []
        nxt: int | None
        if self.seek(start):
            stopped = self._collect(lines, count, query)
            partial = stopped is not None
            if stopped is not None:
                nxt = stopped
            elif self.eof:
                nxt = None
            else:
                nxt = lines[-1].number + 1 if lines else start
        else:  # out of budget on the way (ask again: the index is further on), or past the end
            partial = not self.eof
            nxt = start if partial else None
        if self.eof and self.pos >= self.size:
            last = os.pread(self.fd, 1, self.size - 1) if self.size else b"\n"
            self.index.total = self.line - 1 if last == b"\n" else self.line
        return Page(lines, start, nxt, partial, self.size, self.pos, self.index.total)

    def seek(self, line: int) -> bool:
        """Go to the start of `line`: False if the budget ran out or the file ended first."""
        self.line, self.pos = self.index.nearest(line)
        while self.line < line:
            if self.left <= 0:
                return False
            data = self._read(self.pos)
            if not data:
                return False
            need = line - self.line
            if data.count(b"\n") < need:
                self._moved(data.count(b"\n"), len(data), data.endswith(b"\n"))
                continue
            lo, hi = 0, len(data) - 1  # the need-th newline: the first index holding it
            while lo < hi:
                mid = (lo + hi) // 2
                if data.count(b"\n", 0, mid + 1) >= need:
                    hi = mid
                else:
                    lo = mid + 1
            self._moved(need, lo + 1, True)
        return True

    def _collect(self, lines: list[Line], count: int, query: bytes) -> int | None:
        """From a line's start, lines (those holding `query`, when set) until `count`:
        None when done or at the end of the file, else the line to go on from."""
        carry = b""  # the start of a line whose newline is not read yet
        size = min(FIRST_READ, self.chunk)
        while len(lines) < count:
            if self.left <= 0:
                return self.line
            data = self._read(self.pos + len(carry), size)
            size = min(size * 2, self.chunk)
            if not data:
                if carry:  # the last line, with no newline
                    self._take(lines, carry, query, known=True)
                    self.pos += len(carry)
                return None
            block = carry + data
            end = block.rfind(b"\n") + 1
            if end:
                self._moved(0, self._lines(lines, block, end, count, query), True)
                carry = block[end:] if len(lines) < count else b""
            elif len(block) <= self.long:
                carry = block
            else:  # a very long line: its head, then on to its end
                self._take(lines, block, query, known=False)
                self._moved(0, len(block), False)
                carry = b""
                stopped = self._skip_rest(lines)
                if stopped is not None:
                    return None if len(lines) >= count else stopped
        return None

    def _lines(self, lines: list[Line], block: bytes, end: int, count: int, query: bytes) -> int:
        """Take the lines of `block[:end]` (whole lines, from `self.line`) until `count`;
        the bytes used: `end`, or less when `count` was reached (the next line's start)."""
        low = block.lower() if query else block
        i = 0
        while i < end and len(lines) < count:
            first = i
            if query:
                hit = low.find(query, i, end)
                if hit < 0:
                    break
                first = block.rfind(b"\n", i, hit) + 1 or i
                self.line += block.count(b"\n", i, first)
            stop = block.index(b"\n", first)
            if not query or hit + len(query) <= first + self.long:  # as `_take` looks
                self._take(lines, block[first:stop], b"", known=True)
            self.line += 1
            i = stop + 1
        if len(lines) < count:
            self.line += block.count(b"\n", i, end)
            return end
        return i

    def _take(self, lines: list[Line], raw: bytes, query: bytes, known: bool) -> None:
        """Line `self.line`, if it holds `query` (within its first `long` bytes)."""
        if query and query not in raw[: self.long].lower():
            return
        if known and raw.endswith(b"\r"):  # a CRLF line's CR (a partial line has no end yet)
            raw = raw[:-1]
        cut = min(len(raw), MAX_LINE)
        while 0 < cut < len(raw) and raw[cut] & 0xC0 == 0x80:  # not inside a character
            cut -= 1
        text = raw[:cut].decode("utf-8", "backslashreplace")
        lines.append(Line(self.line, text, len(raw) - cut, known))

    def _skip_rest(self, lines: list[Line]) -> int | None:
        """Read on to the end of the line `pos` is in: None once past it, else (the budget
        ran out) the line to go on from, the next one; the points noted on the way let
        that request cross the rest of this line in steps."""
        cr = False  # the last byte read was a CR (not counted if a newline follows)
        while True:
            if self.left <= 0:
                return self.line + 1
            data = self._read(self.pos)
            if not data:
                return None
            nl = data.find(b"\n")
            if lines and lines[-1].number == self.line:
                last = lines[-1]
                grown = last.more + (len(data) if nl < 0 else nl - (data[nl - 1 : nl] == b"\r"))
                if nl == 0 and cr:
                    grown -= 1
                lines[-1] = Line(last.number, last.text, grown, nl >= 0)
            cr = data.endswith(b"\r")
            if nl < 0:
                self._moved(0, len(data), False)
                continue
            self._moved(1, nl + 1, True)
            return None
