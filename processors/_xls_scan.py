"""A bounded walk of an `.xls` (BIFF8 in an OLE2 file): each sheet's grid and the text
its cells copy, as calamine will build them when the workbook opens (all sheets at once).

calamine reserves room for the cells a sheet's `DIMENSIONS` record declares (a 14-byte
record may claim 4 billion rows) and builds each sheet as one grid from its first to its
last cell; a `LABELSST` cell copies its shared string. The records are read one by one
(type, length), the shared strings only for their lengths.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import olefile

from processors._sheet_scan import CELL_COST, STRING_COST, Extent

_CELL_RECORDS = {0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006}
_BOF, _EOF, _DIMENSIONS, _SST, _CONTINUE, _LABELSST, _MULRK, _SHEET = (
    0x0809, 0x000A, 0x0200, 0x00FC, 0x003C, 0x00FD, 0x00BD, 0x0085)  # fmt: skip


@dataclass
class XlsBook:
    sheets: list[tuple[str, Extent]] = field(default_factory=list)
    cells: int = 0  # every sheet's grid, and the largest room reserved for one
    text: int = 0  # the shared strings, and their copies in cells


def xls_book(data: bytes) -> XlsBook | None:
    """The grids and text of an `.xls`; None if `data` holds no BIFF workbook stream
    (an encrypted `.xlsx`, or no OLE file at all: calamine says what it is)."""
    try:
        ole = olefile.OleFileIO(data)
    except (OSError, ValueError, struct.error):
        return None
    with ole:
        stream = next((s for s in ("Workbook", "Book") if ole.exists(s)), None)
        if stream is None:
            return None
        try:
            biff = ole.openstream(stream).read()
        except (OSError, ValueError, struct.error):
            return None
    return _walk(biff)


def _records(biff: bytes) -> Iterator[tuple[int, bytes]]:
    at = 0
    while at + 4 <= len(biff):
        typ, size = struct.unpack_from("<HH", biff, at)
        yield typ, biff[at + 4 : at + 4 + size]
        at += 4 + size


def _walk(biff: bytes) -> XlsBook:
    book = XlsBook()
    names: list[str] = []
    lengths: list[int] = []
    refs: Counter[int] = Counter()
    sst: list[bytes] | None = None
    depth = streams = 0  # substreams: the globals, then one per sheet (charts nest)
    extent = Extent()
    reserved = 0
    for typ, rec in _records(biff):
        if sst is not None and typ != _CONTINUE:
            lengths, declared = _sst_lengths(sst)
            book.text += sum(lengths) + STRING_COST * max(len(lengths), declared)
            sst = None
        if typ == _BOF:
            depth += 1
            if depth == 1:
                streams += 1
                extent = Extent()
        elif typ == _EOF:
            if depth == 1 and streams > 1:
                name = names[len(book.sheets)] if len(book.sheets) < len(names) else "?"
                book.sheets.append((name, extent))
                book.cells += extent.cells
            depth -= 1
        elif typ == _SHEET and len(rec) >= 8:
            names.append(_short_string(rec[6:]))
        elif typ == _SST:
            sst = [rec]
        elif typ == _CONTINUE and sst is not None:
            sst.append(rec)
        elif typ == _DIMENSIONS:
            reserved = max(reserved, _declared(rec))
        elif typ in _CELL_RECORDS and len(rec) >= 4:
            row, col = struct.unpack_from("<HH", rec)
            extent.add(row, col)
            if typ == _LABELSST and len(rec) >= 10:
                refs[struct.unpack_from("<I", rec, 6)[0]] += 1
        elif typ == _MULRK and len(rec) >= 6:
            row, col = struct.unpack_from("<HH", rec)
            extent.add(row, col)
            extent.add(row, struct.unpack_from("<H", rec, len(rec) - 2)[0])
    book.cells += reserved
    book.text += sum(n * ((lengths[i] if i < len(lengths) else 0) + CELL_COST)
                     for i, n in refs.items())  # fmt: skip
    return book


def _declared(rec: bytes) -> int:
    """The cells a DIMENSIONS record makes calamine reserve."""
    if len(rec) == 14:
        first, last, left, right = struct.unpack_from("<IIHH", rec)
    elif len(rec) == 10:
        first, last, left, right = struct.unpack_from("<HHHH", rec)
    else:
        return 0
    if left > 0xFF or right < left:
        left = 0
    if last < 1 or right < 1:
        return 1
    return max(last - first, 0) * max(right - left, 0)


def _short_string(rec: bytes) -> str:
    if len(rec) < 2:
        return "?"
    cch, high = rec[0], rec[1] & 1
    raw = rec[2 : 2 + cch * (2 if high else 1)]
    return raw.decode("utf-16-le" if high else "latin-1", errors="replace")


def _sst_lengths(parts: list[bytes]) -> tuple[list[int], int]:
    """The UTF-8 length (at most) of each string of an SST record and its CONTINUEs, and
    the count it declares. A string's characters may run on into a CONTINUE record,
    which then starts with a new flags byte."""
    if len(parts[0]) < 8:
        return [], 0
    declared = struct.unpack_from("<I", parts[0], 4)[0]
    lengths: list[int] = []
    seg, at = 0, 8
    try:
        while True:
            if at >= len(parts[seg]):
                seg, at = seg + 1, 0
                if seg >= len(parts):
                    break
            cch = _u16(parts, seg, at)
            seg, at = _skip(parts, seg, at, 2)
            flags = _take(parts, seg, at, 1)[0]
            seg, at = _skip(parts, seg, at, 1)
            runs = ext = 0
            if flags & 8:
                runs = _u16(parts, seg, at)
                seg, at = _skip(parts, seg, at, 2)
            if flags & 4:
                ext = struct.unpack("<I", _take(parts, seg, at, 4))[0]
                seg, at = _skip(parts, seg, at, 4)
            high, left = flags & 1, cch
            while left:
                width = 2 if high else 1
                room = (len(parts[seg]) - at) // width
                n = min(left, room)
                at += n * width
                left -= n
                if left:
                    seg, at = seg + 1, 0
                    high = parts[seg][0] & 1
                    at = 1
            lengths.append(cch * (3 if flags & 1 else 2))
            seg, at = _skip(parts, seg, at, 4 * runs + ext)
    except (IndexError, struct.error):
        pass  # a torn table: calamine reports it
    return lengths, declared


def _take(parts: list[bytes], seg: int, at: int, n: int) -> bytes:
    out = b""
    while len(out) < n:
        out += parts[seg][at : at + n - len(out)]
        seg, at = seg + 1, 0
    return out


def _u16(parts: list[bytes], seg: int, at: int) -> int:
    return int(struct.unpack("<H", _take(parts, seg, at, 2))[0])


def _skip(parts: list[bytes], seg: int, at: int, n: int) -> tuple[int, int]:
    at += n
    while at > len(parts[seg]):
        at -= len(parts[seg])
        seg += 1
        if seg >= len(parts):
            raise IndexError
    return seg, at
