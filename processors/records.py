"""Tabular built-ins: CSV rows into records, and the facts of each column into the summary.

`csv_records` names each row's values by the file's header (column letters without one)
and sends a row whose column count is not the header's, as a record with its line and the
reason, to `invalid`; blank rows are left out. `profile` passes records on and counts, per
field, filled and empty values, whether every value is a number (then its min and max) and
up to `max_distinct` distinct values, into `aggregates.<node name>` with the row count.
Only the first `max_columns` fields are profiled, so neither memory nor the summary grows
with a file's width: the rest are counted (`columns_not_profiled`) and a `note` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import repeat
from typing import Any

from config import values as opt
from processors.base import Context, Line, Outbox
from processors.excel import column_letters, field_names


class CsvRecords:
    """CSV rows (lists) into records (dicts) keyed by the header's field names."""

    def __init__(self, invalid: str | None = None) -> None:
        self.invalid = opt.optional_tag("invalid", invalid)

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return [to[0]] + ([self.invalid] if self.invalid else [])

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.fields = None if ctx.header is None else field_names(ctx.header)

    def process(self, tag: str, line: Line) -> list[tuple[str, Line]]:
        out = _Collect()
        self.process_batch(tag, [line], [0], out)
        return out.emitted

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        fields = self.fields
        if fields is None:  # no header: the widest row so far names the columns
            width = max(map(len, values), default=0)
            fields = self.fields = [column_letters(i) for i in range(width)]
        width = len(fields)
        if set(map(len, values)) == {width}:  # the usual batch: every row well-formed
            out.put(self.to, records_of(tuple(fields))(values), origins)
            return
        good: list[Line] = []
        good_o: list[int] = []
        bad: list[Line] = []
        bad_o: list[int] = []
        for row, origin in zip(values, origins, strict=True):
            if len(row) == width:
                good.append(dict(zip(fields, row, strict=True)))
                good_o.append(origin)
            elif row and row != [""]:
                reason = f"expected {width} columns, got {len(row)}"
                bad.append({"line": origin or None, "reason": reason, "row": row})
                bad_o.append(origin)
        out.put(self.to, good, good_o)
        if self.invalid:
            out.put(self.invalid, bad, bad_o)


Rows = list[list[str]]
MAX_FIELDS = 1000  # more: dict(zip(...)) per row


@lru_cache(maxsize=64)
def records_of(fields: tuple[str, ...]) -> Callable[[Rows], list[Line]]:
    """A function making rows of exactly `len(fields)` values into records keyed by
    `fields`: a comprehension of one dict display, `{k0: v0, k1: v1, …}`, which CPython
    builds presized in one step — about twice as fast a row as `dict(zip(fields, row))`.
    The generated code holds only the number of fields; the names are its arguments."""
    n = len(fields)
    if not 0 < n <= MAX_FIELDS:
        return lambda rows: list(map(dict, map(zip, repeat(fields), rows)))
    keys = ", ".join(f"k{i}" for i in range(n))
    pairs = ", ".join(f"k{i}: v{i}" for i in range(n))
    values = ", ".join(f"v{i}" for i in range(n))
    code = f"def make({keys}):\n    return lambda rows: [{{{pairs}}} for ({values},) in rows]\n"
    scope: dict[str, Any] = {}
    exec(compile(code, f"<records of {n} fields>", "exec"), scope)
    make: Callable[[Rows], list[Line]] = scope["make"](*fields)
    return make


class _Collect:
    """An outbox for one line's worth of output (the per-line `process` path)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, Line]] = []
        self.total = 0

    def put(self, tag: str, values: list[Line], origins: Sequence[int]) -> None:
        self.emitted += [(tag, v) for v in values]
        self.total += len(values)


class _Column:
    __slots__ = ("distinct", "empty", "filled", "high", "low", "numeric")

    def __init__(self) -> None:
        self.filled = self.empty = 0
        self.numeric = True
        self.low: float | None = None
        self.high: float | None = None
        self.distinct: set[Any] | None = set()


class Profile:
    """Per-field facts of the records that pass (other lines pass uncounted)."""

    def __init__(self, max_distinct: int = 1000, max_columns: int = 200) -> None:
        self.max_distinct = opt.integer("max_distinct", max_distinct, 0)
        self.max_columns = opt.integer("max_columns", max_columns, 1)
        self.columns: dict[str, _Column] = {}
        self.over = 0  # the most fields of one batch left unprofiled (past max_columns)
        self.rows = 0

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx

    def process(self, tag: str, line: Line) -> Line:
        self._count([line])
        return line

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        self._count(values)
        out.put(self.to, values, origins)

    def _count(self, values: list[Line]) -> None:
        records = [v for v in values if v.__class__ is dict]
        if not records:
            return
        self.rows += len(records)
        names = dict.fromkeys(records[0])
        if any(r.keys() != names.keys() for r in records):  # ragged records: every field
            names = dict.fromkeys(k for r in records for k in r)
        over = 0
        for name in names:
            column = self.columns.get(name)
            if column is None:
                if len(self.columns) >= self.max_columns:  # memory stays flat for any width
                    over += 1
                    continue
                column = self.columns[name] = _Column()
            cells = list(map(dict.get, records, repeat(name)))
            empty = cells.count("") + cells.count(None)
            column.empty += empty
            column.filled += len(cells) - empty
            if empty:
                cells = [c for c in cells if c != "" and c is not None]
            if column.numeric and cells:
                self._numbers(column, cells)
            if column.distinct is not None:
                try:
                    column.distinct.update(cells)
                except TypeError:  # lists, objects: not counted
                    column.distinct = None
                else:
                    if len(column.distinct) > self.max_distinct:
                        column.distinct = None
        self.over = max(self.over, over)

    @staticmethod
    def _numbers(column: _Column, cells: list[Any]) -> None:
        try:
            numbers = list(map(float, cells))  # numbers, and text that is one
        except (TypeError, ValueError):
            column.numeric = False
            column.low = column.high = None
            return
        low, high = min(numbers), max(numbers)
        column.low = low if column.low is None else min(column.low, low)
        column.high = high if column.high is None else max(column.high, high)

    def flush(self) -> None:
        facts: dict[str, Any] = {}
        for name, column in self.columns.items():
            fact: dict[str, Any] = {"filled": column.filled, "empty": column.empty}
            if column.filled:
                fact["type"] = "number" if column.numeric else "text"
            if column.numeric and column.low is not None and column.high is not None:
                fact.update(min=_whole(column.low), max=_whole(column.high))
            if column.distinct is not None:
                fact["distinct"] = len(column.distinct)
            else:
                fact["distinct_over"] = self.max_distinct
            facts[name] = fact
        profile: dict[str, Any] = {"rows": self.rows, "columns": facts}
        if self.over:
            profile["columns_not_profiled"] = self.over
            profile["note"] = (
                f"only the first {self.max_columns} columns are profiled (max_columns); "
                f"{self.over} more were counted, not profiled"
            )
        self.ctx.aggregates[self.ctx.name] = profile


def _whole(number: float) -> float | int:
    return int(number) if number.is_integer() else number
