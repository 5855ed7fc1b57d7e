"""Records to rows: each declared column's type checked and converted, the same rules for
SQLite and PostgreSQL; a value that does not fit is a data error naming line and column."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson

from sinks.errors import SinkDataError

Row = tuple[Any, ...]
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


# per database, each column type's check-and-convert (raises TypeError or ValueError)
POSTGRES: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "integer": _integer,
    "real": _real,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "json": _json,
}
SQLITE = {**POSTGRES, "boolean": lambda v: int(_boolean(v)), "timestamp": _sqlite_timestamp}
_FAILS = (TypeError, ValueError, OverflowError)


def rows(
    stream: BinaryIO,
    sink: str,
    uid: str,
    source: str,
    columns: tuple[tuple[str, str], ...],
    convert: dict[str, Callable[[Any], Any]],
) -> Iterator[Row]:
    """One row per line of an output file: `(uid, source, line, *columns)`, each value
    checked and converted by `convert[type]`. With no `columns`, the one value is the line
    as JSON text (a text line becomes a JSON string). The file is a numbered output (see
    processors/outputs.py): each line starts with its input line's number and a tab."""
    if not columns:
        yield from _json_rows(stream, uid, source)
        return
    convs = [(name, convert[kind]) for name, kind in columns]
    for n, raw in _numbered(stream):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record = None
        if record.__class__ is not dict:
            text = raw.rstrip(b"\n")[:80].decode(errors="replace")
            raise SinkDataError(sink, f"line {n}: not a record (a JSON object), so it has no "
                                f"columns: {text!r}", n)  # fmt: skip
        get = record.get
        row: list[Any] = [uid, source, n]
        try:
            for name, conv in convs:
                v = get(name)
                row.append(None if v is None else conv(v))
        except _FAILS:
            raise _violation(sink, n, record, columns, convert) from None
        yield tuple(row)


def _numbered(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(input line, the rest) per line of a numbered output."""
    for raw in stream:
        number, _, rest = raw.partition(b"\t")
        yield int(number), rest


def input_line(stream: BinaryIO, row: int) -> int:
    """The input line of the `row`-th line (1-based) of a numbered output (0: none)."""
    stream.seek(0)
    for i, (n, _) in enumerate(_numbered(stream), 1):
        if i == row:
            return n
    return 0


def _json_rows(stream: BinaryIO, uid: str, source: str) -> Iterator[Row]:
    for n, raw in _numbered(stream):
        line = raw.rstrip(b"\n")
        try:
            orjson.loads(line)
            yield uid, source, n, line.decode()
        except orjson.JSONDecodeError:
            yield uid, source, n, orjson.dumps(line.decode()).decode()


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
