"""A user's own format: a format string like `<date> <time> <pid> <level> <component>:
<message>`, or a regular expression with named groups.

In a format string each `<name>` is a field and everything else is literal text, a
space standing for any run of spaces. A field matches as little text as lets the rest of
the line match, except these: `<level>` a level word (normalised), `<message>` the rest of
the line, `<date>` and `<time>` a date (`2026-11-22`, `22/11/2026`, `2026.11.22`) and a
time of day (`10:00:00`, `10:00:00.123`) that together are the record's `ts`, `<ts>`
any timestamp. A type after a colon changes what a field matches and how it is kept:
`<pid:int>`, `<ms:float>`, `<host:word>` (no spaces), `<when:ts>` (a timestamp under
another name). A regular expression's named groups are the fields, with the same names
meaning the same. Either way `ts` (or a `:ts` field) becomes `time` in RFC 3339 when it is
a time the parser knows (ISO 8601, syslog's `Nov 22 10:00:00`, the access log's
`22/Nov/2026:10:00:00 +0000`, `2026/11/22 10:00:00`, seconds since 1970).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from config import ConfigError
from processors.logformats.levels import level as level_of
from processors.logformats.servers import clf_time
from processors.logformats.spec import LogFormat, Parser, Record
from processors.logformats.structured import any_time
from processors.logformats.system import bsd_time
from processors.logformats.times import Clock

_FIELD = re.compile(r"<([^<>]*)>")
_NAMED = {
    "level": r"[A-Za-z]+[1-9]?",
    "message": r".*",
    "date": r"\d{2,4}[-/.]\d\d[-/.]\d{2,4}",
    "time": r"\d\d:\d\d:\d\d(?:[.,:]\d+)?",
}
TYPES = {
    "int": r"[+-]?\d+",
    "float": r"[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?",
    "word": r"\S+",
    "ts": r".+?",
}
_CONVERT: dict[str, Callable[[str], Any]] = {"int": int, "float": float}


def guess_time(clock: Clock, text: str) -> str | None:
    """RFC 3339 for a timestamp in any form the built-in formats know, or None."""
    if not text:
        return None
    if text[0].isdigit():
        if "/" in text[:10] and ":" in text[10:13]:
            return clf_time(clock, text)
        if text[4:5] == "/":
            return clock.iso(text.replace("/", "-", 2))
        m = re.fullmatch(r"(\d\d)[/.](\d\d)[/.](\d{4})[ T](\d\d:\d\d:\d\d)(?:[.,](\d+))?", text)
        if m is not None:  # day first, as in Europe
            return clock.naive(f"{m[3]}-{m[2]}-{m[1]}", m[4], m[5])
        return any_time(clock, text.replace(".", "-", 2) if text[4:5] == "." else text)
    return bsd_time(clock, text)


def compile_format(key: str, text: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """The regular expression a format string stands for, and each field's type."""
    parts: list[str] = []
    types: dict[str, str] = {}
    at = 0
    for m in _FIELD.finditer(text):
        parts.append(_literal(text[at : m.start()]))
        name, _, kind = m[1].partition(":")
        if not name.isidentifier():
            raise ConfigError(
                key,
                f"field <{m[1]}> in format {text!r}: {name!r} is not a field name",
                "names are letters, digits and _: <level>, <component>, <pid:int>",
            )
        if name in types:
            raise ConfigError(key, f"field <{name}> appears twice in format {text!r}")
        if kind and kind not in TYPES:
            raise ConfigError(
                key,
                f"field <{m[1]}> in format {text!r}: unknown type {kind!r}",
                f"types: {', '.join(TYPES)}",
            )
        types[name] = kind or ("ts" if name == "ts" else "")
        parts.append(f"(?P<{name}>{TYPES[kind] if kind else _NAMED.get(name, '.+?')})")
        at = m.end()
    if not types:
        raise ConfigError(
            key,
            f"format {text!r} names no field",
            "a format string names its fields: <date> <time> <level> <message>",
        )
    literal = _FIELD.sub("", text)
    if "<" in literal or ">" in literal:
        raise ConfigError(
            key,
            f"format {text!r} has a < or > that is no field",
            "write fields as <name>; for a literal < or >, use a regular expression",
        )
    parts.append(_literal(text[at:]))
    return re.compile("".join(parts)), types


def _literal(text: str) -> str:
    return r"\s+".join(re.escape(piece) for piece in text.split(" ")) if text else ""


def compile_regex(key: str, text: str) -> tuple[re.Pattern[str], dict[str, str]]:
    try:
        regex = re.compile(text)
    except re.error as exc:
        raise ConfigError(key, f"invalid regular expression {text!r}: {exc}") from None
    if not regex.groupindex:
        raise ConfigError(
            key,
            f"regular expression {text!r} has no named group",
            "name the fields: (?P<level>\\w+) (?P<message>.*)",
        )
    return regex, {name: "ts" if name == "ts" else "" for name in regex.groupindex}


def custom_format(key: str, text: str, name: str) -> LogFormat:
    """A `LogFormat` named `name` for a format string or, when `text` has a `(?P<`
    group, a regular expression; a ConfigError under `key` says what is wrong."""
    regex, types = compile_regex(key, text) if "(?P<" in text else compile_format(key, text)
    example = text

    def make(clock: Clock) -> Parser:
        match = regex.fullmatch

        def parse(line: str) -> Record | None:
            m = match(line)
            return None if m is None else _record(m.groupdict(), types, clock)

        return parse

    return LogFormat(name, example, make)


def _record(groups: dict[str, str | None], types: dict[str, str], clock: Clock) -> Record:
    rec: Record = {}
    date, time_of_day = groups.get("date"), groups.get("time")
    if date is not None and time_of_day is not None:
        rec["ts"] = f"{date} {time_of_day}"
        when = guess_time(clock, _day_first(date) + " " + time_of_day.replace(",", "."))
        if when is not None:
            rec["time"] = when
    for name, value in groups.items():
        if value is None or (name in ("date", "time") and "ts" in rec):
            continue
        kind = types.get(name, "")
        if name == "level":
            found = level_of(value)
            rec["level"] = found or value.upper()
            if rec["level"] != value:
                rec["level_raw"] = value
        elif kind == "ts":
            rec[name] = value
            when = guess_time(clock, value)
            if when is not None:
                rec["time"] = when
        elif kind in _CONVERT:
            try:
                rec[name] = _CONVERT[kind](value)
            except ValueError:
                rec[name] = value
        else:
            rec[name] = value
    message = rec.pop("message", "")
    rec["message"] = message
    return rec


def _day_first(date: str) -> str:
    """`22/11/2026` as `2026-11-22`; a date with the year first as ISO."""
    parts = re.split(r"[-/.]", date)
    if len(parts) == 3 and len(parts[2]) == 4:
        return f"{parts[2]}-{parts[1]}-{parts[0]}"
    if len(parts) == 3 and len(parts[0]) == 2:
        return f"20{parts[0]}-{parts[1]}-{parts[2]}"
    return "-".join(parts)
