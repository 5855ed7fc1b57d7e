"""Validation built-ins: CSV rows against a schema, JSON lines against required keys and
types. Valid lines go to the node's first `to` tag; invalid ones, as records naming the
line and the reason, to `invalid` (dropped when it is null).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any

import orjson

from config import ConfigError
from config import values as opt
from processors.base import Context, Line, Outbox

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("not a boolean")


CSV_TYPES: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": lambda s: int(s.strip()),
    "float": lambda s: float(s.strip()),
    "bool": _bool,
    "date": lambda s: date.fromisoformat(s.strip()).isoformat(),
    "datetime": lambda s: datetime.fromisoformat(s.strip()).isoformat(),
}


class _Validator:
    invalid: str | None

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return [to[0]] + ([self.invalid] if self.invalid else [])

    def check(self, line: Line, origin: int) -> tuple[bool, Line]:
        raise NotImplementedError

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        ok, value = self.check(line, 0)
        if ok:
            return [(self.to, value)]
        return [(self.invalid, value)] if self.invalid else []

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        good: list[Line] = []
        good_o: list[int] = []
        bad: list[Line] = []
        bad_o: list[int] = []
        check = self.check
        for value, origin in zip(values, origins, strict=True):
            ok, result = check(value, origin)
            if ok:
                good.append(result)
                good_o.append(origin)
            else:
                bad.append(result)
                bad_o.append(origin)
        out.put(self.to, good, good_o)
        if self.invalid:
            out.put(self.invalid, bad, bad_o)


class CsvValidate(_Validator):
    """Checks CSV rows against `columns` ({"name", "type", "required"}): the column count
    (with `strict`), required values, and types (str, int, float, bool, date, datetime).
    Columns are found by name in the file's header when it has one, by position if not.
    `emit: "row"` passes valid rows on as CSV rows, `"record"` as typed records."""

    def __init__(
        self, columns: Any, invalid: str | None = None, strict: bool = True, emit: str = "row"
    ) -> None:
        if not isinstance(columns, list) or not columns:
            raise ConfigError(
                "columns", 'expected a non-empty list of {"name", "type", "required"}'
            )
        self.columns: list[tuple[str, Callable[[str], Any], bool]] = []
        for i, col in enumerate(columns):
            if not isinstance(col, dict) or set(col) - {"name", "type", "required"}:
                raise ConfigError(f"columns[{i}]", 'expected {"name", "type", "required"}')
            name = opt.string(f"columns[{i}].name", col.get("name"), empty=False)
            kind = opt.choice(f"columns[{i}].type", col.get("type", "str"), tuple(CSV_TYPES))
            required = opt.boolean(f"columns[{i}].required", col.get("required", False))
            self.columns.append((name, CSV_TYPES[kind], required))
        self.invalid = opt.optional_tag("invalid", invalid)
        self.strict = opt.boolean("strict", strict)
        self.records = opt.choice("emit", emit, ("row", "record")) == "record"
        self.positions: list[int | None] = list(range(len(self.columns)))
        self.problem: str | None = None

    def start(self, ctx: Context) -> None:
        super().start(ctx)
        if ctx.header is None:
            return
        where = {name.strip(): i for i, name in enumerate(ctx.header)}
        self.positions = [where.get(name) for name, _, _ in self.columns]
        missing = [
            name
            for (name, _, req), pos in zip(self.columns, self.positions, strict=True)
            if req and pos is None
        ]
        if missing:
            self.problem = f"header lacks required column(s): {', '.join(missing)}"

    def check(self, line: Line, origin: int) -> tuple[bool, Line]:
        row = line if isinstance(line, list) else next(csv.reader([line]), [])
        reason = self.problem or self._reason(row)
        if reason is None and self.records:
            return True, self._record(row)
        if reason is None:
            return True, row
        return False, {"line": origin or None, "reason": reason, "row": row}

    def _reason(self, row: list[str]) -> str | None:
        expected = len(self.columns) if self.ctx.header is None else len(self.ctx.header)
        if self.strict and len(row) != expected:
            return f"expected {expected} columns, got {len(row)}"
        for (name, cast, required), pos in zip(self.columns, self.positions, strict=True):
            value = row[pos] if pos is not None and pos < len(row) else ""
            if value.strip() == "":
                if required:
                    return f"column {name!r} is required"
                continue
            try:
                cast(value)
            except ValueError:
                return f"column {name!r}: {value!r} is not a valid {_type_name(cast)}"
        return None

    def _record(self, row: list[str]) -> dict[str, Any]:
        rec: dict[str, Any] = {}
        for (name, cast, _), pos in zip(self.columns, self.positions, strict=True):
            value = row[pos] if pos is not None and pos < len(row) else ""
            rec[name] = cast(value) if value.strip() else None
        return rec


def _type_name(cast: Callable[[str], Any]) -> str:
    return next(name for name, fn in CSV_TYPES.items() if fn is cast)


JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "number": (int, float),
    "bool": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


class JsonValidate(_Validator):
    """Checks that each line is a JSON object with the `required` keys and the `types`
    ({"key": "str|int|float|number|bool|object|array|null"}). Valid lines go on as records
    (`emit: "record"`) or unchanged text (`emit: "line"`)."""

    def __init__(
        self,
        required: Any = None,
        types: Any = None,
        invalid: str | None = None,
        emit: str = "record",
    ) -> None:
        self.required = [] if required is None else opt.strings("required", required)
        if types is None:
            types = {}
        if not isinstance(types, dict):
            raise ConfigError("types", 'expected an object like {"level": "str"}')
        self.types = {
            k: JSON_TYPES[opt.choice(f"types.{k}", v, tuple(JSON_TYPES))] for k, v in types.items()
        }
        self.invalid = opt.optional_tag("invalid", invalid)
        self.records = opt.choice("emit", emit, ("record", "line")) == "record"

    def check(self, line: Line, origin: int) -> tuple[bool, Line]:
        reason = None
        rec: Any = line
        if not isinstance(line, dict):
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                reason = f"not JSON: {exc}"
        if reason is None:
            reason = self._reason(rec)
        if reason is None:
            return True, rec if self.records else line
        text = line if isinstance(line, str) else orjson.dumps(line, default=str).decode()
        return False, {"line": origin or None, "reason": reason, "text": text[:1000]}

    def _reason(self, rec: Any) -> str | None:
        if not isinstance(rec, dict):
            return f"expected a JSON object, got {type(rec).__name__}"
        for key in self.required:
            if key not in rec:
                return f"missing key {key!r}"
        for key, kinds in self.types.items():
            if key in rec and (
                not isinstance(rec[key], kinds)
                or (isinstance(rec[key], bool) and bool not in kinds)
            ):
                return f"key {key!r}: expected {_json_name(kinds)}, got {type(rec[key]).__name__}"
        return None


def _json_name(kinds: tuple[type, ...]) -> str:
    return next(name for name, k in JSON_TYPES.items() if k == kinds)
