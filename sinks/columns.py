"""Records to rows: each declared column's type checked and converted, the same rules for
SQLite and PostgreSQL; a value that does not fit is a data error naming line and column."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any, BinaryIO

import orjson

from formats.lineframes import read_frames
from sinks.errors import SinkDataError

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _text(v: Any) -> str:
    if v.__class__ is str:
        if "\x00" in v:
            raise ValueError("contains a NUL character")
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise TypeError


def _integer(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        v = int(v)
    n = int(v.strip()) if isinstance(v, str) else v
    if not isinstance(n, int) or not _INT64[0] <= n <= _INT64[1]:
        raise ValueError("out of the 64-bit range")
    return n


def _real(v: Any) -> float:
    if isinstance(v, bool):
        raise TypeError
    x = float(v) if isinstance(v, int | float | str) else math.nan
    if math.isnan(x) and not (isinstance(v, str) and v.strip().lower() == "nan"):
        raise TypeError
    return x


def _boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise TypeError


def _timestamp(v: Any) -> datetime:
    """ISO 8601 ("2026-11-22 10:00:00", "…T…Z"); a naive one is UTC (PostgreSQL sessions
    run in UTC, SQLite gets the offset written out)."""
    if v.__class__ is not str:
        raise TypeError
    return datetime.fromisoformat(v)


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


def _sqlite_timestamp(v: Any) -> str:
    ts = _timestamp(v)
    return (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).isoformat()


_FAILS = (TypeError, ValueError, OverflowError)


Columns = list[list[Any]]  # a block of rows, one list per table column
Convert = dict[str, Callable[[Any], Any]]
WholeColumn = Callable[[list[Any], set[type]], list[Any] | None]
BLOCK = 1 << 18  # bytes of output lines read at a time
_NONE = type(None)


def batches(
    stream: BinaryIO,
    sink: str,
    columns: tuple[tuple[str, str], ...],
    rules: Rules,
    block: int = BLOCK,
) -> Iterator[tuple[list[int], Columns]]:
    """The rows of a numbered output (formats/lineframes.py), about `block` bytes of its
    lines at a time: each row's input line number, and each declared column's values
    (checked and converted by `rules`) as a list. With no `columns`, the one column is
    the line as JSON text (a text line becomes a JSON string). A row's `uid` and `source`
    are the same for all: the caller adds them.

    A block is converted column by column, in C where a column's values need no work (all
    text, all integers in range, timestamps of one plain shape); any doubt — a line that
    is not a record, a value of another type, a NUL escape anywhere — converts that block
    row by row instead, with the same functions, which name the first refused value."""
    for numbers, text in _blocks(stream, block):
        raws = text.split(b"\n")
        raws.pop()  # after the last line's "\n"
        if len(raws) != len(numbers):
            raise ValueError(f"numbered output: {len(numbers)} numbers for {len(raws)} lines")
        values = None
        if b"\\u0000" not in text:
            values = _by_column(raws, columns, rules.whole)
        if values is None:
            values = by_row(numbers, raws, sink, columns, rules.one)
        yield numbers, values


def _blocks(stream: BinaryIO, block: int) -> Iterator[tuple[list[int], bytes]]:
    """A numbered output's frames, joined into blocks of at least `block` bytes (but the
    last): (each line's number, the lines)."""
    numbers: list[int] = []
    texts: list[bytes] = []
    size = 0
    for frame_numbers, text in read_frames(stream):
        numbers.extend(frame_numbers)
        texts.append(text)
        size += len(text)
        if size >= block:
            yield numbers, b"".join(texts)
            numbers, texts, size = [], [], 0
    if texts:
        yield numbers, b"".join(texts)


def _by_column(
    raws: list[bytes],
    columns: tuple[tuple[str, str], ...],
    whole: dict[str, WholeColumn],
) -> list[list[Any]] | None:
    """A block's columns, or None when a value needs a closer look (`by_row`)."""
    try:
        records = list(map(orjson.loads, raws))
    except orjson.JSONDecodeError:
        return None
    if not columns:
        return [list(map(bytes.decode, raws))]
    if set(map(type, records)) != {dict}:
        return None
    values = []
    for name, kind in columns:
        col = list(map(dict.get, records, repeat(name)))
        try:
            done = whole[kind](col, set(map(type, col)))
        except _FAILS:
            done = None  # a value its type refuses: `by_row` finds the first one
        if done is None:
            return None
        values.append(done)
    return values


def by_row(
    numbers: list[int],
    raws: list[bytes],
    sink: str,
    columns: tuple[tuple[str, str], ...],
    convert: Convert,
) -> list[list[Any]]:
    """A block's columns, converted value by value; the first refused value raises. What
    `batches` does for a block in doubt, and the reference its column-wise path must equal."""
    if not columns:
        return [list(map(_json_text, raws))]
    convs = [(name, convert[kind]) for name, kind in columns]
    rows = []
    for n, raw in zip(numbers, raws, strict=True):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if record.__class__ is not dict:
            text = raw[:80].decode(errors="replace")
            raise SinkDataError(sink, f"line {n}: not a record (a JSON object), so it has no "
                                f"columns: {text!r}", n)  # fmt: skip
        get = record.get
        row: list[Any] = []
        try:
            for name, conv in convs:
                v = get(name)
                row.append(None if v is None else conv(v))
        except _FAILS:
            raise _violation(sink, n, record, columns, convert) from None
        rows.append(row)
    return [list(col) for col in zip(*rows, strict=True)]


def _json_text(raw: bytes) -> str:
    try:
        orjson.loads(raw)
        return raw.decode()
    except orjson.JSONDecodeError:
        return orjson.dumps(raw.decode()).decode()


def input_line(stream: BinaryIO, row: int) -> int:
    """The input line of the `row`-th line (1-based) of a numbered output (0: none)."""
    stream.seek(0)
    for numbers, _ in read_frames(stream) if row > 0 else ():
        if row <= len(numbers):
            return numbers[row - 1]
        row -= len(numbers)
    return 0


# Whole columns that need no per-value work, or only work done in C: each returns the
# converted values — exactly what the type's `Rules.one` function gives value by value —
# or None when some value needs that function. `types` is the set of the values' types.


def _present(col: list[Any], types: set[type]) -> list[Any]:
    """The values that are not None (`col` itself when there are none)."""
    return col if _NONE not in types else [v for v in col if v is not None]


def _same(kind: type) -> WholeColumn:
    """The column as it is when every value is of `kind` or None (text: no NUL, as the
    block has no "\\u0000"; a real: JSON has no NaN)."""

    def same(col: list[Any], types: set[type]) -> list[Any] | None:
        return col if types <= {kind, _NONE} else None

    return same


def _same_integer(col: list[Any], types: set[type]) -> list[Any] | None:
    if not types <= {int, _NONE}:
        return None
    present = _present(col, types)
    if present and not (_INT64[0] <= min(present) and max(present) <= _INT64[1]):
        return None
    return col


def _each(convert: Callable[[Any], Any], col: list[Any], types: set[type]) -> list[Any]:
    """`convert` applied to each value that is not None."""
    if _NONE not in types:
        return list(map(convert, col))
    return [None if v is None else convert(v) for v in col]


def _json_texts(col: list[Any], types: set[type]) -> list[Any] | None:
    return _each(_json, col, types)


def _boolean_ints(col: list[Any], types: set[type]) -> list[Any] | None:
    return _each(int, col, types) if types <= {bool, _NONE} else None


_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_PLAIN = {b"0000-00-00 00:00:00", b"0000-00-00T00:00:00"}  # naive, whole seconds
_PLAIN_PG = {s + tz for s in _PLAIN for tz in (b"", b"Z", b"+00:00", b"-00:00")}


def _plain(col: list[str], shapes: set[bytes]) -> bool:
    """Whether every value has one and the same of `shapes` (digits as 0)."""
    width = len(col[0])
    if set(map(len, col)) != {width}:
        return False
    text = "".join(col)
    if not text.isascii():
        return False
    shape = text[:width].encode().translate(_DIGITS)
    return shape in shapes and text.encode().translate(_DIGITS) == shape * len(col)


def _pg_timestamps(col: list[Any], types: set[type]) -> list[Any] | None:
    """Parsed to check them; a plain shape goes to the server as it came (PostgreSQL reads
    it as `datetime.fromisoformat` does, naive as UTC), any other as the parsed value."""
    if not types <= {str, _NONE}:
        return None
    present = _present(col, types)
    if present and _plain(present, _PLAIN_PG):
        list(map(datetime.fromisoformat, present))  # each a real moment, or ValueError
        return col
    return _each(datetime.fromisoformat, col, types)


def _sqlite_timestamps(col: list[Any], types: set[type]) -> list[Any] | None:
    """`_sqlite_timestamp` of each; for naive whole-second timestamps of one shape, done on
    the column's text at once: ISO with a "T" and "+00:00"."""
    if not types <= {str, _NONE}:
        return None
    if types == {str} and _plain(col, _PLAIN):
        list(map(datetime.fromisoformat, col))  # each a real moment, or ValueError
        text = "+00:00\x00".join(col).replace(" ", "T")
        return (text + "+00:00").split("\x00")
    return _each(_sqlite_timestamp, col, types)


@dataclass(frozen=True)
class Rules:
    """A database's conversion of each column type: value by value (`one`: raises
    TypeError or ValueError), and a whole column at a time (`whole`)."""

    one: Convert
    whole: dict[str, WholeColumn]


_ONE: Convert = {
    "text": _text,
    "integer": _integer,
    "real": _real,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "json": _json,
}
_WHOLE: dict[str, WholeColumn] = {
    "text": _same(str),
    "integer": _same_integer,
    "real": _same(float),
    "boolean": _same(bool),
    "timestamp": _pg_timestamps,
    "json": _json_texts,
}
POSTGRES = Rules(_ONE, _WHOLE)
SQLITE = Rules(
    {**_ONE, "boolean": lambda v: int(_boolean(v)), "timestamp": _sqlite_timestamp},
    {**_WHOLE, "boolean": _boolean_ints, "timestamp": _sqlite_timestamps},
)


def _violation(
    sink: str,
    n: int,
    record: dict[str, Any],
    columns: tuple[tuple[str, str], ...],
    convert: dict[str, Callable[[Any], Any]],
) -> SinkDataError:
    """The error naming the first of `record`'s values its column refuses."""
    for name, kind in columns:
        value = record.get(name)
        if value is None:
            continue
        try:
            convert[kind](value)
        except _FAILS as exc:
            why = f" ({exc})" if str(exc) else ""
            return SinkDataError(sink, f"line {n}: column {name!r} is {kind}, got "
                                 f"{value!r:.80}{why}", n, name, value)  # fmt: skip
    return SinkDataError(sink, f"line {n}: a value its column refuses", n)


_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_BOOLEAN_TEXT = {True: "t", False: "f"}


def copy_text(uid: str, source: str, numbers: list[int], columns: Columns) -> bytes:
    """A block of rows in PostgreSQL's COPY text format: tab-separated, `\\N` for NULL,
    backslash escapes for backslash, tab, newline and carriage return; each row is `uid`,
    `source`, its number, then its value of each of `columns`."""
    if not numbers:
        return b""
    prefix = f"{_copy_column([uid])[0]}\t{_copy_column([source])[0]}\t"
    rows = map("\t".join, zip(map(int.__repr__, numbers), *map(_copy_column, columns), strict=True))
    return (prefix + f"\n{prefix}".join(rows) + "\n").encode()


def _copy_column(col: list[Any]) -> list[str]:
    try:
        text = "".join(col)  # all text (the usual column) is found out here, in C
    except TypeError:
        pass
    else:
        if not any(c in text for c, _ in _ESCAPES):
            return col
        for c, escaped in _ESCAPES:
            col = list(map(str.replace, col, repeat(c), repeat(escaped)))
        return col
    types = set(map(type, col))
    if _NONE in types:
        present = iter(_copy_column([v for v in col if v is not None]))
        return ["\\N" if v is None else next(present) for v in col]
    if len(types) != 1:
        return [_copy_column([v])[0] for v in col]  # mixed
    if types == {int}:
        return list(map(int.__repr__, col))
    if types == {float}:
        return list(map(float.__repr__, col))  # inf, nan: PostgreSQL reads them too
    if types == {bool}:
        return list(map(_BOOLEAN_TEXT.__getitem__, col))
    if types == {datetime}:
        return list(map(datetime.isoformat, col))
    raise TypeError(f"no COPY text for {types}")  # no column type converts to these
