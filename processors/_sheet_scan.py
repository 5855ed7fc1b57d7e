"""Bounded scans of a workbook's sheet XML, as calamine will read it: the grid each sheet
spans and the text its cells will hold, found before calamine allocates either.

calamine builds a sheet as one dense grid from its first to its last cell (`Range::
from_sparse`): two cells, `A1` and `ZZ1000000`, make 702 million slots. It also copies a
shared string into every cell that shows it. Neither the `<dimension>` element nor the
`uniqueCount` attribute can be trusted (both optional, both may lie), so the scans read
the cells themselves, one decompressed chunk at a time, and never hold the shared strings'
text: only each string's length.

An `.xlsx` sheet is scanned at C speed while its cells are written the way every writer
writes them (`<c r="B7" …>`): a regex finds only the cells that move the grid's edges.
Anything else (a prefixed tag, a cell without `r`, single quotes) makes `XlsxSheet` ask
for a second pass that walks every tag (`slow=True`), as calamine does.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter

STRING_COST = 48  # bytes calamine spends on a string besides its text (String + allocation)
CELL_COST = 16  # bytes the copy of a shared string into a cell costs besides its text
_NO_CELL = 1 << 62


class Extent:
    """The grid a sheet's cells span (0-based rows and columns), as calamine sizes it."""

    __slots__ = ("bottom", "left", "right", "top")

    def __init__(self) -> None:
        self.top = self.left = _NO_CELL
        self.bottom = self.right = -1

    def add(self, row: int, col: int) -> None:
        self.top, self.bottom = min(self.top, row), max(self.bottom, row)
        self.left, self.right = min(self.left, col), max(self.right, col)

    @property
    def cells(self) -> int:
        if self.bottom < 0:
            return 0
        return (self.bottom - self.top + 1) * (self.right - self.left + 1)

    def ref(self) -> str:
        if self.bottom < 0:
            return "no cells"
        first = f"{column_name(self.left)}{self.top + 1}"
        return f"{first}:{column_name(self.right)}{self.bottom + 1}"


def column_name(col: int) -> str:
    """0 -> A, 701 -> ZZ."""
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_number(letters: bytes) -> int:
    """A -> 0, ZZ -> 701 (either case, as calamine reads them)."""
    col = 0
    for c in letters.upper():
        col = col * 26 + c - 64
    return col - 1


class NeedsSlowScan(Exception):
    """The sheet is not written the usual way: scan it again tag by tag."""


# -- shared strings -------------------------------------------------------------------------

_SI = re.compile(rb"<(?:[^\s<>/:]+:)?si(?:\s[^>]*)?(?<!/)>(.*?)</(?:[^\s<>/:]+:)?si\s*>", re.S)
_SI_PLAIN = re.compile(rb"<si><t>([^<]*)</t></si>")
_SI_START = re.compile(rb"<(?:[^\s<>/:]+:)?si(?:\s[^>]*)?(?<!/)>")
_SI_END = re.compile(rb"</(?:[^\s<>/:]+:)?si\s*>")
_SST = re.compile(rb"<(?:[^\s<>/:]+:)?sst\s[^>]*?uniqueCount\s*=\s*[\"']\s*([0-9]+)")


class SharedStrings:
    """The lengths of a workbook's shared strings (their XML: an upper bound of their text)
    and what calamine's table of them costs (`cost`): `STRING_COST` a string, for as many
    strings as `uniqueCount` claims if it claims more (calamine reserves room for them),
    plus the text."""

    def __init__(self) -> None:
        self.lengths = array("Q")
        self.text = 0
        self.declared = 0
        self._carry = b""
        self._open: int | None = None  # the length so far of a string still open

    @property
    def cost(self) -> int:
        held = self.text + (self._open or 0)
        return held + STRING_COST * max(len(self.lengths), self.declared)

    def feed(self, chunk: bytes) -> None:
        buf = self._carry + chunk if self._carry else chunk
        if self._open is not None:  # inside a string longer than a chunk: find its end
            close = _SI_END.search(buf)
            if close is None:
                keep = min(len(buf), 64)  # an end tag cut in two
                self._open += len(buf) - keep
                self._carry = buf[len(buf) - keep :]
                return
            self._add([self._open + close.start()])
            self._open = None
            buf = buf[close.end() :]
        if not self.lengths and not self.declared and (m := _SST.search(buf, 0, 4096)):
            self.declared = int(m.group(1))
        end = buf.rfind(b"</si>") + 5 if b"</si>" in buf else 0
        plain = _SI_PLAIN.findall(buf, 0, end)  # the usual <si><t>…</t></si>, at C speed
        if end and len(plain) == buf.count(b"<si", 0, end):
            self._add(list(map(len, plain)))
        else:
            end = 0
            spans = []
            for m in _SI.finditer(buf):
                spans.append(m.end(1) - m.start(1))
                end = m.end()
            self._add(spans)
        rest = buf[end:]
        start = _SI_START.search(rest)
        if start is not None:  # a string goes on into the next chunk
            self._open = len(rest) - start.end()
            self._carry = b""
        else:
            cut = rest.rfind(b"<")
            self._carry = rest[cut:] if cut >= 0 and len(rest) - cut < 4096 else b""

    def _add(self, spans: list[int]) -> None:
        self.lengths.extend(spans)
        self.text += sum(spans)

    def length(self, index: int) -> int:
        return self.lengths[index] if index < len(self.lengths) else 0


# -- xlsx sheets ---------------------------------------------------------------------------


def _cls(a: str, b: str, letters: bool) -> str:
    return f"[{a}-{b}{a.lower()}-{b.lower()}]" if letters else f"[{a}-{b}]"


def _lit(text: str, letters: bool) -> str:
    return "".join(f"[{c}{c.lower()}]" for c in text) if letters else text


def _after(s: str, letters: bool) -> str:
    """A regex for the numbers (decimal, or column letters) that come after `s`."""
    first, low, last = ("A", "A", "Z") if letters else ("1", "0", "9")
    alts = [_cls(first, last, letters) + _cls(low, last, letters) + f"{{{len(s)},}}"]
    for i, ch in enumerate(s):
        if ch < last:
            rest = len(s) - i - 1
            tail = _cls(low, last, letters) + f"{{{rest}}}" if rest else ""
            alts.append(_lit(s[:i], letters) + _cls(chr(ord(ch) + 1), last, letters) + tail)
    return "(?:" + "|".join(alts) + ")"


def _before(s: str, letters: bool) -> str | None:
    """A regex for the numbers (from 1, or column A) that come before `s`; None: none do."""
    first, low, last = ("A", "A", "Z") if letters else ("1", "0", "9")
    alts = []
    if len(s) > 1:
        alts.append(_cls(first, last, letters) + _cls(low, last, letters) + f"{{0,{len(s) - 2}}}")
    for i, ch in enumerate(s):
        bottom = first if i == 0 else low
        if ch > bottom:
            rest = len(s) - i - 1
            tail = _cls(low, last, letters) + f"{{{rest}}}" if rest else ""
            alts.append(_lit(s[:i], letters) + _cls(bottom, chr(ord(ch) - 1), letters) + tail)
    return "(?:" + "|".join(alts) + ")" if alts else None


_CANON_REF = re.compile(rb'<c r="([A-Z]+)0*([1-9][0-9]*)"')
_SHARED_REF = re.compile(rb'<c r="[A-Z]+[0-9]+"(?: s="[0-9]+")? t="s"><v>([0-9]+)</v>')
_ODD = (re.compile(rb'<c(?! r="[A-Z])[\s>/]'), re.compile(rb":c[\s>/]"))  # scan tag by tag
_TAG = re.compile(rb"<(/?)(?:[^\s<>/!?:]+:)?([^\s<>/!?:]+)([^>]*)>")
_ATTR = re.compile(rb"""(?:^|\s)(r|t)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(rb"([A-Za-z]*)([0-9]+)")
_ANY_CELL = re.compile(rb'<c r="[A-Z]')


def _edges(ext: Extent) -> list[re.Pattern[bytes]]:
    """Searches for the cells that would move the grid's edges (uppercase columns, as
    `_ODD` leaves them)."""
    if ext.bottom < 0:
        return [_ANY_CELL]
    key = (ext.top, ext.bottom, ext.left, ext.right)
    if (found := _patterns.get(key)) is not None:
        return found
    cols = [_upper(_after(column_name(ext.right), True)),
            _upper(_before(column_name(ext.left), True))]  # fmt: skip
    before = _before(str(ext.top + 1), False)
    rows = [_after(str(ext.bottom + 1), False), before and before + '"']
    if cols[1]:
        cols[1] += "[0-9]"  # a shorter column ends where the digits start
    found = [re.compile(f'<c r="(?:{c})'.encode()) for c in cols if c]
    row = "|".join(r for r in rows if r)
    found.append(re.compile(f'<c r="[A-Z]+(?:0|{row})'.encode()))
    if len(_patterns) > 64:
        _patterns.clear()
    _patterns[key] = found
    return found


def _upper(pattern: str | None) -> str | None:
    """A column pattern for uppercase letters, and only as far as telling a column apart."""
    if pattern is None:
        return None
    return (
        re.sub(r"\[([A-Z])-([A-Z])[a-z]-[a-z]\]", r"[\1-\2]", pattern)
        .replace("{0,", "{0,")
        .replace(",}", "}")
    )


_patterns: dict[tuple[int, int, int, int], list[re.Pattern[bytes]]] = {}


class XlsxSheet:
    """The grid (`extent`) of one `.xlsx` sheet and the text its shared-string cells copy
    (`text`: each string once per cell that shows it). Fed the sheet's XML in chunks;
    raises `NeedsSlowScan` (fast mode) when the sheet must be walked tag by tag."""

    def __init__(self, strings: SharedStrings, slow: bool = False) -> None:
        self.extent = Extent()
        self._strings = strings
        self._slow = slow
        self._refs: Counter[bytes] = Counter()
        self._carry = b""
        self._row = self._col = 0  # calamine's position for cells without `r`
        self._type: bytes | None = None  # the `t` of the cell being read (slow mode)
        self._value: list[bytes] | None = None  # the text of its `<v>`, while inside it

    @property
    def text(self) -> int:
        length = self._strings.length
        return sum(n * (length(int(i)) + CELL_COST) for i, n in self._refs.items())

    def feed(self, chunk: bytes) -> None:
        buf = self._carry + chunk if self._carry else chunk
        cut = buf.rfind(b"<")  # scan complete tags; text holds no "<"
        if cut < 0:
            cut = len(buf)
        self._carry = buf[cut:]
        self._scan(buf[:cut])

    def close(self) -> None:
        self._scan(self._carry)
        self._carry = b""

    def _scan(self, piece: bytes) -> None:
        if self._slow:
            self._walk(piece)
        elif piece:
            self._fast(piece)

    def _fast(self, piece: bytes) -> None:
        if any(odd.search(piece) for odd in _ODD):
            raise NeedsSlowScan
        ext = self.extent
        last = piece.rfind(b'<c r="')  # rows ascend: the last cell is usually the lowest
        if last >= 0 and (m := _CANON_REF.match(piece, last)):
            ext.add(int(m.group(2)) - 1, column_number(m.group(1)))
        for search in _edges(ext):
            for m in search.finditer(piece):
                ref = _CANON_REF.match(piece, m.start())
                if ref is None:
                    raise NeedsSlowScan
                ext.add(int(ref.group(2)) - 1, column_number(ref.group(1)))
        shared = piece.count(b't="s"')
        if shared:
            refs = _SHARED_REF.findall(piece)
            if len(refs) != shared:
                raise NeedsSlowScan
            self._refs.update(refs)

    def _walk(self, piece: bytes) -> None:
        """Every tag, as calamine's cell reader takes them."""
        at = 0
        for m in _TAG.finditer(piece):
            if self._value is not None:
                self._value.append(piece[at : m.start()])
            at = m.end()
            end, name, attrs = m.groups()
            empty = attrs.endswith(b"/")
            if name == b"row":
                if end:
                    self._row, self._col = self._row + 1, 0
                elif not empty and (r := _attr(attrs, b"r")) is not None:
                    self._row = _position(r)[0]
            elif name == b"c" and not end and not empty:
                r = _attr(attrs, b"r")
                if r is None:
                    row, col = self._row, self._col
                else:
                    row, col = _position(r)
                self._col = col + 1
                self.extent.add(row, col)
                self._type = _attr(attrs, b"t")
            elif name == b"v" and self._type == b"s":
                if end and self._value is not None:
                    text = b"".join(self._value).strip()
                    self._value = None
                    if text.isdigit():
                        self._refs[text] += 1
                elif not end and not empty:
                    self._value = []
        if self._value is not None:
            self._value.append(piece[at:])


def _attr(attrs: bytes, key: bytes) -> bytes | None:
    for m in _ATTR.finditer(attrs):
        if m.group(1) == key:
            return m.group(2) if m.group(2) is not None else m.group(3)
    return None


def _position(ref: bytes) -> tuple[int, int]:
    """(row, column), 0-based, of `B7` (column 0 for a row number alone)."""
    m = _REF.fullmatch(ref.strip())
    if m is None:
        return 0, 0  # calamine fails on it: the workbook is unreadable anyway
    return max(int(m.group(2)) - 1, 0), max(column_number(m.group(1)), 0)
