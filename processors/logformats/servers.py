"""Servers' logs: Apache and nginx access logs (combined and common), their error logs,
PostgreSQL's `log_line_prefix`, NFS-Ganesha, and Proxifier."""

from __future__ import annotations

import re
from typing import Any

from processors.logformats.spec import (
    Joining,
    LogFormat,
    Parser,
    Record,
    fields,
    leveled,
    ordered,
    put_level,
)
from processors.logformats.times import MONTHS, Clock

_COMBINED = re.compile(
    r'(?P<remote>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) '
    r'(?P<path>\S+)(?: (?P<protocol>[^"]*))?" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)
_CLF_TS = re.compile(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d:\d\d:\d\d) ([+-]\d{4})")


def clf_time(clock: Clock, ts: str) -> str | None:
    """`10/Oct/2000:13:55:36 -0700`."""
    m = _CLF_TS.fullmatch(ts)
    month = MONTHS.get(m[2]) if m is not None else None
    if m is None or month is None:
        return None
    return clock.iso(f"{m[3]}-{month:02d}-{m[1]} {m[4]}{m[5]}")


def _combined(clock: Clock) -> Parser:
    """The level comes from the status: 5xx ERROR, 4xx WARNING, else INFO; the message is
    `METHOD path status`, so templates group requests."""
    match = _COMBINED.fullmatch

    def parse(line: str) -> Record | None:
        m = match(line)
        if m is None:
            return None
        rec: Record = {k: v for k, v in m.groupdict().items() if v is not None}
        time = clf_time(clock, rec["ts"])
        if time is not None:
            rec["time"] = time
        status = int(rec["status"])
        rec["status"] = status
        rec["size"] = 0 if rec["size"] == "-" else int(rec["size"])
        rec["level"] = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        rec["component"] = "http"
        rec["message"] = f"{rec['method']} {rec['path']} {status}"
        return rec

    return parse


_NGINX_TAIL = re.compile(
    r", client: (?P<client>[^,]+)(?:, server: (?P<server>[^,]*))?"
    r'(?:, request: "(?P<request>[^"]*)")?(?:, upstream: "(?P<upstream>[^"]*)")?'
    r'(?:, host: "(?P<host>[^"]*)")?(?:, referrer: "(?P<referrer>[^"]*)")?$'
)


def _nginx(m: re.Match[str], clock: Clock, level: str) -> Record:
    """The client, server, request and host nginx appends are fields too; the message
    keeps them."""
    rec = fields(m, "level", "message")
    time = clock.iso(rec["ts"].replace("/", "-", 2))
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    rec = ordered(rec)
    for key in ("pid", "tid", "connection"):
        if key in rec:
            rec[key] = int(rec[key])
    message = m["message"]
    tail = _NGINX_TAIL.search(message)
    if tail is not None:
        rec.update((k, v) for k, v in tail.groupdict().items() if v is not None)
    rec["message"] = message
    return rec


def _apache(m: re.Match[str], clock: Clock, level: str) -> Record:
    rec = fields(m, "level")
    _weekday, month, day, hms, year = rec["ts"].split()
    hms, _, frac = hms.partition(".")
    number = MONTHS.get(month)
    time = clock.parts(int(year), number, int(day), hms, frac) if number else None
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    for key in ("pid", "tid"):
        if key in rec:
            rec[key] = int(rec[key])
    return ordered(rec)


_PG_ZONES = ("UTC", "GMT", "Z")


def _postgres(m: re.Match[str], clock: Clock, level: str) -> Record:
    rec = fields(m, "level", "zone")
    ts, zone = m["ts"], m["zone"]
    if zone in _PG_ZONES or (zone is not None and zone[0] in "+-"):
        rec["ts"] = f"{ts} {zone}"
        time = clock.iso(f"{ts}{'Z' if zone in _PG_ZONES else zone}")
    else:  # an abbreviation (CET, EST) names no one offset: the configured zone's
        time = clock.iso(ts)
        if zone is not None:
            rec["ts"] = f"{ts} {zone}"
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    for key in ("pid", "session_line"):
        if key in rec:
            rec[key] = int(rec[key])
    return ordered(rec)


_PG_LINE = leveled(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)"
    r"(?: (?P<zone>[A-Za-z][\w+\-/]*|[+-]\d\d(?::?\d\d)?))? "
    r"\[(?P<pid>\d+)(?:-(?P<session_line>\d+))?\] "
    r"(?:(?P<user>[^@\s]*)@(?P<database>\S*) )?"
    r"(?P<level>[A-Z]+[1-5]?):  (?P<message>.*)",
    _postgres,
)
# lines PostgreSQL writes after a message, about it: fields of that message's record
_PG_ABOUT = frozenset(("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"))


def _postgres_joined(clock: Clock) -> Joining:
    """A message's DETAIL, HINT, CONTEXT, STATEMENT, QUERY and LOCATION lines (of the
    same process) become fields of its record (`detail`, `statement`...), not records."""
    parse_line = _PG_LINE(clock)
    last: list[Any] = [None]  # the process of the last record

    def parse(line: str) -> Record | None:
        rec = parse_line(line)
        if rec is not None:
            if rec.get("level_raw", rec["level"]) in _PG_ABOUT and rec["pid"] == last[0]:
                return None  # absorb() takes it into the record before
            last[0] = rec["pid"]
        return rec

    def absorb(rec: Record, line: str) -> bool:
        about = parse_line(line)
        if about is None or about.get("pid") != rec.get("pid"):
            return False
        raw = about.get("level_raw", about["level"])
        if raw not in _PG_ABOUT:
            return False
        rec[raw.lower()] = about["message"]
        return True

    return Joining(parse, absorb)


def _proxifier(m: re.Match[str], clock: Clock, level: str) -> Record:
    ts = m["ts"]
    rec: Record = {"ts": ts}
    time = clock.parts(None, int(ts[:2]), int(ts[3:5]), ts[6:])
    if time is not None:
        rec["time"] = time
    rec["component"] = m["component"]
    rec["message"] = m["message"]
    return rec


def _ganesha(m: re.Match[str], clock: Clock, level: str) -> Record:
    rec = fields(m, "level", "frac")
    ts = rec["ts"]
    time = clock.naive(f"{ts[6:10]}-{ts[3:5]}-{ts[:2]}", ts[11:19], m["frac"])
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    rec["pid"] = int(rec["pid"])
    return ordered(rec)


FORMATS = [
    LogFormat(
        "combined",
        '203.0.113.9 - alice [22/Nov/2026:10:00:06 +0000] "GET /api/items?id=3 HTTP/1.1" '
        '200 512 "https://example.com/" "curl/8.0"',
        _combined,
        joins=False,
    ),
    LogFormat(
        "nginx_error",
        '2026/11/22 10:00:06 [error] 1234#1234: *1 open() "/srv/www/favicon.ico" failed '
        "(2: No such file or directory), client: 127.0.0.1, server: localhost, request: "
        '"GET /favicon.ico HTTP/1.1", host: "127.0.0.1:8080"',
        leveled(
            r"(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>[a-z]+)\] "
            r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<connection>\d+) )?(?P<message>.*)",
            _nginx,
        ),
    ),
    LogFormat(
        "apache_error",
        "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] "
        "[client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico",
        leveled(
            r"\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] "
            r"\[(?:(?P<module>[\w-]+):)?(?P<level>[a-z]+\d?)\] "
            r"(?:\[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\] )?"
            r"(?:\[client (?P<client>[^\]]+)\] )?(?P<message>.*)",
            _apache,
        ),
    ),
    LogFormat(
        "postgres",
        "2026-11-22 10:00:00.123 UTC [4242] postgres@shop ERROR:  duplicate key value "
        'violates unique constraint "orders_pkey"',
        _postgres_joined,
    ),
    LogFormat(
        "ganesha",
        "19/05/2021 09:31:10 : epoch 60a4eb3e : nfs1 : ganesha.nfsd-1208[main] nfs_start "
        ":NFS STARTUP :EVENT :NFS SERVER INITIALIZED",
        leveled(
            r"(?P<ts>\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))? : epoch "
            r"(?P<epoch>[0-9a-f]+) : (?P<host>\S+) : (?P<program>\S+?)-(?P<pid>\d+)"
            r"\[(?P<thread>[^\]]*)\] (?P<function>\S+) :(?P<component>[^:]*?) ?"
            r":(?P<level>[A-Z_]+) ?:(?P<message>.*)",
            _ganesha,
        ),
    ),
    LogFormat(
        "proxifier",
        "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy "
        "proxy.cse.cuhk.edu.hk:5070 HTTPS",
        leveled(
            r"\[(?P<ts>\d\d\.\d\d \d\d:\d\d:\d\d)\] (?P<component>.+?) - (?P<message>.*)",
            _proxifier,
        ),
    ),
]
