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
    if isinstance(v, str):
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
    if not isinstance(v, str):
        raise TypeError
    ts = datetime.fromisoformat(v.strip())  # ISO 8601: "2026-11-22 10:00:00", "…T…Z"
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)  # naive means UTC


def _json(v: Any) -> str:
    return orjson.dumps(v).decode()


CONVERT: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "integer": _integer,
    "real": _real,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "json": _json,
}


def rows(
    stream: BinaryIO,
    sink: str,
    uid: str,
    source: str,
    columns: tuple[tuple[str, str], ...],
    adapt: Callable[[str, Any], Any] | None = None,
) -> Iterator[Row]:
    """One row per line of an output file: `(uid, source, line, *columns)`. With no
    `columns`, the one value is the line as JSON text (a text line becomes a JSON string).
    `adapt(type, value)` turns a converted value into what the database takes."""
    convert = [(name, kind, CONVERT[kind]) for name, kind in columns]
    for n, raw in enumerate(stream, 1):
        line = raw.rstrip(b"\n")
        if not convert:
            try:
                orjson.loads(line)
                yield uid, source, n, line.decode()
            except orjson.JSONDecodeError:
                yield uid, source, n, orjson.dumps(line.decode()).decode()
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise SinkDataError(
                sink,
                f"line {n}: not a record (a JSON object), so it has no "
                f"columns: {line[:80].decode(errors='replace')!r}",
                n,
            )
        row: list[Any] = [uid, source, n]
        for name, kind, conv in convert:
            value = record.get(name)
            if value is None:
                row.append(None)
                continue
            try:
                out = conv(value)
            except (TypeError, ValueError, OverflowError) as exc:
                why = f" ({exc})" if str(exc) else ""
                raise SinkDataError(
                    sink,
                    f"line {n}: column {name!r} is {kind}, got {value!r:.80}{why}",
                    n,
                    name,
                    value,
                ) from None
            row.append(out if adapt is None else adapt(kind, out))
        yield tuple(row)
