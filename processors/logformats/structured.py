"""Logs whose lines carry their own field names: JSON objects (with journald's export and
docker's json-file as special cases), logfmt (`key=value`), and CRI container lines.

JSON and logfmt records keep every field as written and gain the shared ones: `level`
(from `level`, `severity`, `lvl`, `levelname`, `@l`, journald's `PRIORITY`; bunyan's and
pino's numbers too), `time` (from `time`, `ts`, `timestamp`, `@timestamp`, `t`, `@t`, or
journald's `__REALTIME_TIMESTAMP`), `message` (from `msg`, `MESSAGE`, `@m`…) and
`component` (from `logger`, `component`, `SYSLOG_IDENTIFIER`…), when they are not there.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson

from processors.logformats.levels import set_level
from processors.logformats.spec import Joining, LogFormat, Parser, Record
from processors.logformats.times import Clock

LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "levelname", "log.level", "@l", "PRIORITY")
TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "t", "@t", "datetime", "asctime")
MESSAGE_KEYS = ("msg", "MESSAGE", "@m", "@mt", "text")
COMPONENT_KEYS = ("logger", "logger_name", "component", "module", "SYSLOG_IDENTIFIER", "_COMM")


def any_time(clock: Clock, value: Any) -> str | None:
    """A time field of a structured log: ISO 8601 text, or seconds (or milliseconds,
    microseconds, nanoseconds) since 1970 as a number or digits."""
    if isinstance(value, str):
        if value.isdigit():
            value = int(value)
        else:
            return clock.iso(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    for scale in (1, 1e3, 1e6, 1e9):  # the first that puts it before the year 2100
        if value / scale < 4_102_444_800:
            return clock.epoch(value / scale)
    return None


def normalise(rec: Record, clock: Clock) -> Record:
    """The shared fields added to a structured record (see the module doc)."""
    for key in LEVEL_KEYS:
        if key in rec:
            set_level(rec, rec[key])
            break
    for key in TIME_KEYS:
        if key in rec:
            value = rec[key]
            time = any_time(clock, value)
            if time is not None and (key != "time" or time != value):
                if key == "time":  # ours is RFC 3339: the log's own stays as `ts`
                    rec.setdefault("ts", value)
                rec["time"] = time
            break
    if "component" not in rec:
        for key in COMPONENT_KEYS:
            value = rec.get(key)
            if isinstance(value, str):
                rec["component"] = value
                break
    if not isinstance(rec.get("message"), str):
        for key in MESSAGE_KEYS:
            value = rec.get(key)
            if isinstance(value, str):
                rec["message"] = value
                break
    return rec


def _object(line: str) -> dict[str, Any] | None:
    if line[:1] != "{" and not line.lstrip().startswith("{"):
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _journal(obj: dict[str, Any], clock: Clock) -> Record:
    """journalctl -o json: the journal's fields as they are, and the shared ones."""
    stamp = obj.get("__REALTIME_TIMESTAMP")
    if isinstance(stamp, str) and stamp.isdigit():
        time = clock.epoch(int(stamp) / 1e6)
        if time is not None:
            obj["time"] = time
    for key, field in (("_HOSTNAME", "host"), ("_PID", "pid")):
        value = obj.get(key)
        if isinstance(value, str):
            obj[field] = int(value) if value.isdigit() else value
    message = obj.get("MESSAGE")
    if isinstance(message, list):  # not UTF-8: journald writes the bytes as numbers
        with contextlib.suppress(TypeError, ValueError):
            obj["message"] = bytes(message).decode("utf-8", "replace")
    return normalise(obj, clock)


class _Docker:
    """docker's json-file driver: `{"log": "text\\n", "stream": …, "time": …}`. A line
    longer than 16 KiB is written as several entries, only the last ending in a newline:
    they are joined into one record."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.open = False  # the last record's text has not ended yet

    def parse(self, line: str) -> Record | None:
        if self.open:
            return None  # absorb() takes it
        obj = _object(line)
        if obj is None or "__REALTIME_TIMESTAMP" in obj or not isinstance(obj.get("log"), str):
            return None
        return self._record(obj)

    def _record(self, obj: dict[str, Any]) -> Record:
        text: str = obj.pop("log")
        self.open = not text.endswith("\n")
        rec: Record = {}
        if "time" in obj:
            rec["ts"] = obj["time"]
            time = any_time(self.clock, obj["time"])
            if time is not None:
                rec["time"] = time
        rec.update((k, v) for k, v in obj.items() if k != "time")
        rec["message"] = text.removesuffix("\n")
        return rec

    def absorb(self, rec: Record, line: str) -> bool:
        if not self.open:
            return False
        obj = _object(line)
        if obj is None or not isinstance(obj.get("log"), str):
            self.open = False
            return False
        text = obj["log"]
        self.open = not text.endswith("\n")
        rec["message"] += text.removesuffix("\n")
        return True

    def close(self) -> None:
        self.open = False


def _docker(clock: Clock) -> Joining:
    parser = _Docker(clock)
    return Joining(parser.parse, parser.absorb, parser.close)


def _json(clock: Clock) -> Parser:
    """Any JSON object; journald's and docker's shapes get their own fields."""
    docker = _Docker(clock)

    def parse(line: str) -> Record | None:
        obj = _object(line)
        if obj is None:
            return None
        if "__REALTIME_TIMESTAMP" in obj:
            return _journal(obj, clock)
        if isinstance(obj.get("log"), str) and "stream" in obj:
            return docker._record(obj)
        return normalise(obj, clock)

    return parse


def _journald(clock: Clock) -> Parser:
    def parse(line: str) -> Record | None:
        obj = _object(line)
        if obj is None or "__REALTIME_TIMESTAMP" not in obj:
            return None
        return _journal(obj, clock)

    return parse


_PAIR = re.compile(r'\s*([^\s="]+)(?:=("(?:[^"\\]|\\.)*"|[^\s"]*))?')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def logfmt_pairs(line: str) -> dict[str, Any] | None:
    """`key=value key="quoted \\"value\\"" flag` as a dict (a bare key is true), or None
    when the line is not all pairs or has fewer than two with values."""
    out: dict[str, Any] = {}
    at, end, valued = 0, len(line.rstrip()), 0
    match = _PAIR.match
    while at < end:
        m = match(line, at)
        if m is None or m.end() == at:
            return None
        key, value = m.groups()
        if value is None:
            if not out:
                return None  # a line of words: logfmt lines start with a pair
            out.setdefault(key, True)
        else:
            valued += 1
            if value[:1] == '"':
                value = _ESCAPE.sub(lambda e: _ESCAPES.get(e[1], e[1]), value[1:-1])
            out.setdefault(key, value)
        at = m.end()
        if at < end and not line[at].isspace():
            return None
    return out if valued >= 2 else None


def _logfmt(clock: Clock) -> Parser:
    def parse(line: str) -> Record | None:
        pairs = logfmt_pairs(line)
        return None if pairs is None else normalise(pairs, clock)

    return parse


_CRI = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<stream>stdout|stderr) (?P<tag>[FP])(?:[:\w]*)(?: (?P<message>.*))?"
)


class _Cri:
    """Kubernetes' CRI log lines: `ts stream F|P text`; `P` (partial) lines and the `F`
    line that ends them make one record."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.open = False

    def parse(self, line: str) -> Record | None:
        m = _CRI.fullmatch(line)
        if m is None or self.open:
            return None  # an open record's next part: absorb() takes it
        ts, stream, tag, message = m.groups()
        self.open = tag == "P"
        rec: Record = {"ts": ts}
        time = self.clock.iso(ts)
        if time is not None:
            rec["time"] = time
        rec["stream"] = stream
        rec["message"] = message or ""
        return rec

    def absorb(self, rec: Record, line: str) -> bool:
        m = _CRI.fullmatch(line) if self.open else None
        if m is None:
            self.open = False
            return False
        self.open = m["tag"] == "P"
        rec["message"] += m["message"] or ""
        return True

    def close(self) -> None:
        self.open = False


def _cri(clock: Clock) -> Joining:
    parser = _Cri(clock)
    return Joining(parser.parse, parser.absorb, parser.close)


FORMATS = [
    LogFormat(
        "journald",
        '{"__REALTIME_TIMESTAMP":"1763805600123456","PRIORITY":"3","_HOSTNAME":"web01",'
        '"SYSLOG_IDENTIFIER":"sshd","_PID":"4242","MESSAGE":"error: maximum authentication '
        'attempts exceeded for root"}',
        _journald,
        joins=False,
    ),
    LogFormat(
        "docker",
        '{"log":"Listening on port 8080\\n","stream":"stdout",'
        '"time":"2026-11-22T10:00:00.123456789Z"}',
        _docker,
        joins=False,
    ),
    LogFormat(
        "json",
        '{"time":"2026-11-22T10:00:05Z","level":"warning","msg":"disk 91% full"}',
        _json,
        joins=False,
    ),
    LogFormat(
        "cri",
        "2026-11-22T10:00:00.669794202Z stderr F connection refused, retrying in 5s",
        _cri,
        joins=False,
    ),
    LogFormat(
        "logfmt",
        'time="2026-11-22T10:00:00.123456789Z" level=info msg="Starting up" component=dockerd',
        _logfmt,
        joins=False,
    ),
]
