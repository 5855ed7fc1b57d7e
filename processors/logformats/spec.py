"""What a log format is: a name, an example, and a parser made fresh for each file.

A format's `make(clock)` returns the function the hot loop calls once per line: the line
in, a record (a dict) out, or None when the line is not in this format. Records share
field names: `ts` (the time as written), `time` (RFC 3339, when the text is a time),
`level` (one of `levels.LEVELS`) with `level_raw` when the log wrote it otherwise,
`component`, `message`, and whatever else the format carries (`host`, `pid`, `thread`…).
A parser may also take the lines that follow a record and are no records themselves into
that record (apt's history stanzas, CRI's and docker's partial lines): `make` then
returns a `Joining`. A parser may also parse a whole batch of lines at once (one regex
over their joined text, no Python call a line): `make` then returns a `Batched`. `joins`
is False for formats whose records never span lines, so no stack trace or indented line
is joined to them (JSON: a line is a whole record).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.logformats.levels import LEVEL_OF
from processors.logformats.times import Clock

Record = dict[str, Any]
Parser = Callable[[str], Record | None]
Absorb = Callable[[Record, str], bool]

# a date and time as ISO 8601 and its relatives write them (log4j, logback, Python)
NUMBERS = frozenset(("pid", "tid", "source_line", "status", "size", "connection"))
ISO_TS = r"\d{4}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d:[0-6]\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
# the same, its parts grouped: date, time of day, fraction, zone
ISO_PARTS = (
    r"(?P<date>\d{4}-[01]\d-[0-3]\d)[T ](?P<hms>[0-2]\d:[0-5]\d:[0-6]\d)(?:[.,](?P<frac>\d+))?"
    r"(?P<zone>Z|[+-]\d\d:?\d\d)?"
)


@dataclass(frozen=True)
class LogFormat:
    name: str
    example: str  # one line in this format (README, tests)
    make: Callable[[Clock], Parser]
    joins: bool = True  # continuation lines (stack traces…) may join its records
    catch_all: bool = False  # parses what more specific formats do: never tried first


class Joining:
    """A parser (`parse`) with its own rule for the lines after a record: `absorb(rec,
    line)` takes `line` into `rec` and answers True, or answers False; `close()` says the
    record is full (at the multiline bounds), so what follows starts a new one."""

    def __init__(
        self, parse: Parser, absorb: Absorb, close: Callable[[], None] | None = None
    ) -> None:
        self.parse = parse
        self.absorb = absorb
        self.close = close or _nothing

    def __call__(self, line: str) -> Record | None:
        return self.parse(line)


class Batched:
    """A parser (`parse`, one line) that also parses a batch of lines at once:
    `batch(lines)` answers what `[parse(line) for line in lines]` would, faster."""

    __slots__ = ("batch", "parse")

    def __init__(self, parse: Parser, batch: Callable[[list[str]], list[Record | None]]) -> None:
        self.parse = parse
        self.batch = batch

    def __call__(self, line: str) -> Record | None:
        return self.parse(line)


def _nothing() -> None:
    return None


def leveled(
    pattern: str,
    build: Callable[[re.Match[str], Clock, str], Record | None] | None = None,
    time: str | Callable[[str, Clock], str | None] = "iso",
) -> Callable[[Clock], Parser]:
    """A parser for `pattern`, whose named groups become the record's fields (those that
    did not match are left out; `pid`, `tid` and other counts as numbers); its `level`
    group, if it has one, must be a level word (else the line is not in this format).
    `time`: how `ts` becomes `time` — "iso" (`Clock.iso`), "" (it does not), or a function
    of the `ts` text and the clock (None: no time).
    `build(match, clock, level)`, when given, makes the record instead."""
    regex = re.compile(pattern)
    has_level = "level" in regex.groupindex
    has_message = "message" in regex.groupindex

    def make(clock: Clock) -> Parser:
        match = regex.fullmatch
        to_time: Callable[[str], str | None] | None = None
        if callable(time):
            made = time

            def to_time(value: str) -> str | None:
                return made(value, clock)

        elif time == "iso":
            to_time = clock.iso

        def parse(line: str) -> Record | None:
            m = match(line)
            if m is None:
                return None
            level = ""
            if has_level:
                raw = m["level"]
                if raw is not None:
                    level = LEVEL_OF.get(raw)  # type: ignore[assignment]
                    if level is None:
                        return None
            if build is not None:
                return build(m, clock, level)
            rec: Record = {}
            for key, value in m.groupdict().items():
                if value is None:
                    continue
                if key == "level":
                    rec["level"] = level
                    if level != value:
                        rec["level_raw"] = value
                elif key == "ts":
                    rec["ts"] = value
                    when = to_time(value) if to_time is not None else None
                    if when is not None:
                        rec["time"] = when
                elif key in NUMBERS and value.isdigit():
                    rec[key] = int(value)
                else:
                    rec[key] = value
            if has_message and "message" not in rec:
                rec["message"] = ""
            return rec

        return parse

    return make


def plain(pattern: str, time: str = "iso") -> Callable[[Clock], Parser]:
    """A parser for a format without levels: `pattern`'s named groups are the record."""
    return leveled(pattern, None, time)


def put_level(rec: Record, raw: str, level: str) -> None:
    rec["level"] = level
    if level != raw:
        rec["level_raw"] = raw


def ordered(rec: Record) -> Record:
    """`rec` with the shared fields where every record has them: `ts`, `time`, `level`,
    `level_raw` first, `message` last."""
    out = {k: rec.pop(k) for k in ("ts", "time", "level", "level_raw") if k in rec}
    message = rec.pop("message", "")
    out.update(rec)
    out["message"] = message
    return out


def fields(m: re.Match[str], *skip: str) -> Record:
    """The match's named groups that matched, less `skip`."""
    return {k: v for k, v in m.groupdict().items() if v is not None and k not in skip}
