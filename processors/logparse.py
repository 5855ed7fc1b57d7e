"""The log parser built-in: common log line formats into records (JSON lines at output).

Formats, tried in this order by `format: "auto"`:

* `bracket`  — `2026-11-22 10:00:00 [ERROR] API: msg`
* `json`     — a JSON object per line (`{"level": "error", ...}`)
* `pipe`     — `2026-11-22 10:00:00 | ERROR | API | msg`
* `syslog`   — `<13>Nov 22 10:00:00 host app[42]: msg` (RFC 3164; `<pri>` optional)
* `combined` — Apache/nginx combined (and common) access logs; the level comes from the
  status (5xx ERROR, 4xx WARNING, else INFO)

Every record has `ts`, `level` (upper case) and `message`, plus `component` when the
format has one. Lines that match no format go to `unparsed` (dropped when it is null);
records (lines some node already parsed) pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from config import values as opt
from processors.base import Context, Line, Outbox

Record = dict[str, Any]

BRACKET = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+"
    r"\[(?P<level>[A-Za-z]+)\]\s+(?:(?P<component>[\w.\-/]+):\s+)?(?P<message>.*)"
)
PIPE = re.compile(
    r"(?P<ts>[^|]*?)\s*\|\s*(?P<level>[A-Za-z]+)\s*\|\s*(?P<component>[^|]*?)\s*\|\s?"
    r"(?P<message>.*)"
)
SYSLOG = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<component>[^:\[\s]+)(?:\[(?P<pid>\d+)\])?: ?(?P<message>.*)"
)
COMBINED = re.compile(
    r'(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) '
    r'(?P<path>\S+)(?: (?P<protocol>[^"]*))?" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)
SYSLOG_SEVERITY = ("EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")


def parse_bracket(line: str) -> Record | None:
    m = BRACKET.fullmatch(line)
    if m is None:
        return None
    rec = m.groupdict()
    rec["level"] = rec["level"].upper()
    if rec["component"] is None:
        del rec["component"]
    return rec


def parse_json(line: str) -> Record | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(rec, dict):
        return None
    level = rec.get("level", rec.get("severity"))
    if isinstance(level, str):
        rec["level"] = level.upper()
    return rec


def parse_pipe(line: str) -> Record | None:
    m = PIPE.fullmatch(line)
    if m is None:
        return None
    rec = m.groupdict()
    rec["level"] = rec["level"].upper()
    return rec


def parse_syslog(line: str) -> Record | None:
    m = SYSLOG.fullmatch(line)
    if m is None:
        return None
    rec = m.groupdict()
    pri = rec.pop("pri")
    rec["level"] = SYSLOG_SEVERITY[int(pri) % 8] if pri is not None else "INFO"
    if rec["pid"] is None:
        del rec["pid"]
    else:
        rec["pid"] = int(rec["pid"])
    return rec


def parse_combined(line: str) -> Record | None:
    m = COMBINED.fullmatch(line)
    if m is None:
        return None
    rec: Record = {k: v for k, v in m.groupdict().items() if v is not None}
    status = int(rec["status"])
    rec["status"] = status
    rec["size"] = 0 if rec["size"] == "-" else int(rec["size"])
    rec["level"] = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    rec["component"] = "http"
    rec["message"] = f"{rec['method']} {rec['path']} {status}"
    return rec


FORMATS: dict[str, Callable[[str], Record | None]] = {
    "bracket": parse_bracket,
    "json": parse_json,
    "pipe": parse_pipe,
    "syslog": parse_syslog,
    "combined": parse_combined,
}


def parse_auto(line: str) -> Record | None:
    """Try every format in order; the first that matches wins."""
    return (
        parse_bracket(line)
        or parse_json(line)
        or parse_pipe(line)
        or parse_syslog(line)
        or parse_combined(line)
    )


class ParseLog:
    """Parses log lines into records; lines no format matches go to `unparsed`."""

    def __init__(self, format: str = "auto", unparsed: str | None = None) -> None:
        opt.choice("format", format, ("auto", *FORMATS))
        self.parse = parse_auto if format == "auto" else FORMATS[format]
        self.unparsed = opt.optional_tag("unparsed", unparsed)

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return [to[0]] + ([self.unparsed] if self.unparsed else [])

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        rec = line if isinstance(line, dict) else self.parse(line)
        if rec is not None:
            return [(self.to, rec)]
        return [(self.unparsed, line)] if self.unparsed else []

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        parse = self.parse
        records: list[Line] = []
        rec_origins: list[int] = []
        bad: list[Line] = []
        bad_origins: list[int] = []
        for value, origin in zip(values, origins, strict=True):
            rec = value if value.__class__ is dict else parse(value)  # records: parsed already
            if rec is not None:
                records.append(rec)
                rec_origins.append(origin)
            else:
                bad.append(value)
                bad_origins.append(origin)
        out.put(self.to, records, rec_origins)
        if self.unparsed:
            out.put(self.unparsed, bad, bad_origins)
