"""The log parser built-in: log lines into records (JSON lines at output).

`format` names what to expect: `auto` (the default: every built-in format of
`processors.logformats`), one format's name, a format string (`<date> <time> <level>
<message>`), a regular expression with named groups, or a list of these. With more than
one candidate, the first lines of each file (its first batch) decide: every candidate
parses them, and the one that parses most is tried first on every line; a line it does
not parse is tried against the others, so a file that mixes formats still parses. Lines
no format parses join the record before them when they look like its continuation (see
`logformats.multiline`), else they go to `unparsed` (dropped when it is null). Records
(lines some node already parsed) pass through unchanged. The file's summary gets, under
the node's name, the format chosen, the sample's match rate, the records per format and
the lines joined and left unparsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from config import ConfigError
from config import values as opt
from processors.base import Context, Line, Outbox
from processors.logformats import FORMATS, detect
from processors.logformats.custom import custom_format
from processors.logformats.multiline import Join, continues
from processors.logformats.spec import Batched, Joining, LogFormat, Parser, Record
from processors.logformats.times import Clock, zone

SAMPLE = 256  # lines auto detection looks at (at most one batch)
DETECT_TRIES = 8  # batches auto detection may look at before it settles for none


def _never(line: str) -> None:
    return None


class _Batch:
    """What one batch becomes: records (the one held from the batch before first) with
    their line numbers and the lines being joined to them, and the unparsed lines."""

    __slots__ = ("bad", "bad_origins", "floor", "joins", "origins", "others", "passed",
                 "records")  # fmt: skip

    def __init__(self, held: tuple[Record, int, Join | None] | None) -> None:
        self.records: list[Line] = []
        self.origins: list[int] = []
        self.joins: dict[int, Join] = {}  # by index in `records`
        self.bad: list[Line] = []
        self.bad_origins: list[int] = []
        self.floor = 0  # records before this index are not ours to join lines to
        self.passed = 0  # records that came parsed already
        self.others = 0  # records the other formats made
        if held is not None:
            self.records.append(held[0])
            self.origins.append(held[1])
            if held[2] is not None:
                self.joins[0] = held[2]


def candidates(key: str, value: Any) -> list[LogFormat]:
    """The formats a `format` option names, checked (see the module doc)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError(key, "expected a format or a non-empty list of them, got []")
    found: dict[str, LogFormat] = {}
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, str) or not item:
            raise ConfigError(where, f"expected a format name or format string, got {item!r}")
        if item == "auto":
            found.update((name, fmt) for name, fmt in FORMATS.items() if name not in found)
        elif item in FORMATS:
            found[item] = FORMATS[item]
        elif "<" in item or ">" in item:
            name = "custom" if "custom" not in found else f"custom{i + 1}"
            found[name] = custom_format(where, item, name)
        else:
            raise ConfigError(
                where,
                f"unknown format {item!r}",
                f"auto, a format string like '<date> <time> <level> <message>', a regular "
                f"expression with named groups, or one of: {', '.join(FORMATS)}",
            )
    return list(found.values())


class ParseLog:
    """Parses log lines into records; lines no format matches go to `unparsed`."""

    def __init__(
        self,
        format: Any = "auto",
        unparsed: str | None = None,
        multiline: bool = True,
        max_record_lines: int = 1000,
        max_record_bytes: int = 1 << 20,
        tz: str = "local",
        year: int | None = None,
    ) -> None:
        self.formats = candidates("format", format)
        self.unparsed = opt.optional_tag("unparsed", unparsed)
        self.multiline = opt.boolean("multiline", multiline)
        self.max_lines = opt.integer("max_record_lines", max_record_lines, 1)
        self.max_bytes = opt.integer("max_record_bytes", max_record_bytes, 1)
        self.tz = zone("tz", tz)
        self.year = None if year is None else opt.integer("year", year, 1, 9999)
        self.clock = Clock(self.tz, self.year)
        self.main: Parser = _never
        self.batch: Callable[[list[str]], list[Record | None]] | None = None  # main's
        self.main_format: LogFormat | None = None
        self.others = [(f, f.make(self.clock)) for f in self.formats]
        self.detected = len(self.formats) == 1
        if self.detected:  # one format: nothing to detect, nothing to fall back on
            self.main_format = self.formats[0]
            self.main, self.others = self.others[0][1], []
            self.batch = self.main.batch if isinstance(self.main, Batched) else None
        self.tries = 0
        self.sample: dict[str, Any] | None = None
        self.held: tuple[Record, int, Join | None] | None = None  # the last record so far
        self.last_other: tuple[Record, LogFormat, Parser] | None = None
        self.counts: dict[str, int] = {}
        self.main_count = 0
        self.joined = 0
        self.bad = 0

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return [to[0]] + ([self.unparsed] if self.unparsed else [])

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx

    # -- detection ---------------------------------------------------------------------

    def _detect(self, values: list[Line]) -> None:
        sample = [v for v in values[:SAMPLE] if v.__class__ is str and v.strip()]
        if not sample:
            return
        trial = [(f.name, f.make(Clock(self.tz, self.year))) for f in self.formats]
        joins = {f.name for f in self.formats if f.joins} if self.multiline else set()
        ranked = detect(trial, sample, joins)
        self.tries += 1
        if ranked[0][1] == 0 and self.tries < DETECT_TRIES:
            self.sample = {"lines": len(sample), "parsed": 0, "rate": 0.0, "also": {}}
            return  # nothing parses yet (a header, a banner): look at the next batch
        self._settle(ranked, len(sample))

    def _settle(self, ranked: list[tuple[str, int]], lines: int) -> None:
        """The format that parsed most of the sample is tried first (a catch-all only
        when nothing else parsed a line); the others after it, those that parsed some of
        the sample first, each group in the formats' own order (specific before generic,
        so a catch-all never takes a line a specific format would parse)."""
        self.detected = True
        by_name = {f.name: f for f in self.formats}
        hits = dict(ranked)
        specific = [(n, h) for n, h in ranked if h and not by_name[n].catch_all]
        best, most = (specific or ranked)[0]
        if most:
            self.main_format = by_name[best]
            self.main = self.main_format.make(self.clock)
            self.batch = self.main.batch if isinstance(self.main, Batched) else None
        order = [f for f in self.formats if f.name != best or not most]
        order.sort(key=lambda f: not hits.get(f.name))  # stable: the own order within
        self.others = [(f, f.make(self.clock)) for f in order]
        self.sample = {
            "lines": lines,
            "parsed": most,
            "rate": round(most / lines, 4) if lines else 0.0,
            "also": {n: h for n, h in ranked if h and n != best} if most else {},
        }

    # -- parsing -----------------------------------------------------------------------

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        """One line alone (no joining): how the engine replays a failed batch."""
        if line.__class__ is not str:
            return [(self.to, line)]
        rec = self.main(line)
        for _, parse in self.others:
            if rec is not None:
                break
            rec = parse(line)
        if rec is not None:
            return [(self.to, rec)]
        return [(self.unparsed, line)] if self.unparsed else []

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        if not self.detected:
            self._detect(values)
        batch = _Batch(self.held)
        parsed: tuple[list[Record | None], list[int]] | None = None
        if not isinstance(self.main, Joining):  # its parses hang on no absorb(): at once
            try:
                many = self.batch
                got = many(values) if many is not None else list(map(self.main, values))
                parsed = got, [i for i, r in enumerate(got) if r is None] if None in got else []
            except TypeError:  # a record among the lines: one at a time below
                parsed = None
        if parsed is not None:
            self._take(batch, *parsed, values, origins)
        else:
            self._one_by_one(batch, values, origins)
        records, rec_origins, joins = batch.records, batch.origins, batch.joins
        self.main_count += len(records) - (self.held is not None) - batch.passed - batch.others
        self.held = None
        if len(records) > batch.floor:  # the last record may go on in the next batch
            self.held = (records.pop(), rec_origins.pop(), joins.pop(len(records), None))
        for at, join in joins.items():
            join.apply(records[at])
        out.put(self.to, records, rec_origins)
        if self.unparsed:
            out.put(self.unparsed, batch.bad, batch.bad_origins)
        self.bad += len(batch.bad)

    def _take(
        self,
        batch: _Batch,
        parsed: list[Record | None],
        misses: list[int],
        values: list[Line],
        origins: Any,
    ) -> None:
        """The main format's records of a batch, in runs between the lines it did not
        parse (`misses`: few, as a rule), which `_other` places."""
        records, rec_origins = batch.records, batch.origins
        at = 0
        for miss in misses:
            records += parsed[at:miss]
            rec_origins += origins[at:miss]
            self._other(batch, values[miss], origins[miss])
            at = miss + 1
        records += parsed[at:] if at else parsed
        rec_origins += origins[at:] if at else origins

    def _one_by_one(self, batch: _Batch, values: list[Line], origins: Sequence[int]) -> None:
        """A batch line by line: records among the lines, or a format whose lines hang
        on one another."""
        parse = self.main
        records, rec_origins = batch.records, batch.origins
        for value, origin in zip(values, origins, strict=True):
            if value.__class__ is str:
                rec = parse(value)
                if rec is not None:
                    records.append(rec)
                    rec_origins.append(origin)
                else:
                    self._other(batch, value, origin)
            else:  # a record some node parsed already (or a row): it passes through
                records.append(value)
                rec_origins.append(origin)
                batch.floor = len(records)
                batch.passed += 1

    def _other(self, batch: _Batch, line: str, origin: int) -> None:
        """A line the main format does not parse: part of the record before it, a record
        in another format, or unparsed."""
        records, joins = batch.records, batch.joins
        at = len(records) - 1
        if at >= batch.floor and self._joined(batch, at, line, origin):
            return
        for fmt, parse in self.others:
            rec = parse(line)
            if rec is not None:
                records.append(rec)
                batch.origins.append(origin)
                self.counts[fmt.name] = self.counts.get(fmt.name, 0) + 1
                batch.others += 1
                self.last_other = (rec, fmt, parse)
                if fmt.name == "go_panic":  # its goroutines' frames join it, indented or not
                    joins[len(records) - 1] = Join(origin, go=True)
                return
        if at >= batch.floor:
            join = joins.get(at)
            if join is None:
                join = joins[at] = Join(batch.origins[at])
            join.ended = True  # what comes after this line is not that record's
        batch.bad.append(line)
        batch.bad_origins.append(origin)

    def _joined(self, batch: _Batch, at: int, line: str, origin: int) -> bool:
        """Whether `line` went into record `at` (or, past its bounds, to unparsed)."""
        rec = batch.records[at]
        last = self.last_other
        fmt, parser = (last[1], last[2]) if last is not None and last[0] is rec else (
            self.main_format, self.main)  # fmt: skip
        absorb = getattr(parser, "absorb", None)
        joins = self.multiline and fmt is not None and fmt.joins
        if absorb is None and not joins:
            return False
        join = batch.joins.get(at)
        if join is None:
            join = batch.joins[at] = Join(batch.origins[at])
        if join.room(line, self.max_lines, self.max_bytes):
            if absorb is not None and absorb(rec, line):
                join.took(line, origin)
                self.joined += 1
                return True
            if joins and continues(line, join):
                join.add(line, origin)
                self.joined += 1
                return True
        elif join.closed:
            if absorb is not None:
                parser.close()  # type: ignore[attr-defined]
            if line[:1] in " \t":  # the rest of a trace past the bounds: no format's
                batch.bad.append(line)  # record starts indented (or blank)
                batch.bad_origins.append(origin)
                return True
        return False

    def flush_batch(self, out: Outbox) -> None:
        """The summary, and the record held back (under its own line number)."""
        counts = dict(self.counts)
        if self.main_format is not None and self.main_count:
            counts = {self.main_format.name: self.main_count, **counts}
        records = sum(counts.values())
        lines = records + self.joined + self.bad
        self.ctx.aggregates[self.ctx.name] = {
            "format": None if self.main_format is None else self.main_format.name,
            "sample": self.sample,
            "records": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "joined": self.joined,
            "unparsed": self.bad,
            "parsed_rate": round(1 - self.bad / lines, 4) if lines else None,
        }
        held, self.held = self.held, None
        if held is not None:
            if held[2] is not None:
                held[2].apply(held[0])
            out.put(self.to, [held[0]], [held[1]])
