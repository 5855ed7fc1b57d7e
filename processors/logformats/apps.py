"""Application logs: the ISO 8601 family with a level word (log4j, logback, Spring Boot,
Python `logging`, OpenStack's oslo.log, Zookeeper, Hadoop), Spark's and HDFS's short
dates, Windows CBS, Go's `log` package, and our own bracket and pipe layouts."""

from __future__ import annotations

import re

from processors.logformats.levels import LEVEL_OF
from processors.logformats.spec import (
    ISO_PARTS,
    ISO_TS,
    Batched,
    LogFormat,
    Parser,
    Record,
    leveled,
    plain,
)
from processors.logformats.times import Clock

COMPONENT = r"[\w$.\-/]+"
_BRACKET = re.compile(
    rf"(?P<ts>{ISO_PARTS})\s+\[(?P<level>[A-Za-z]+)\]\s+(?:(?P<component>[\w.\-/]+):\s+)?"
    r"(?P<message>.*)"
)
# the common bracket line (neither fraction nor zone in its time, a component) in a
# batch's joined lines, every line a match: its groups, or all "" when the line is
# another one (`_BRACKET` parses it then); `[^\S\n]` is `\s` within a line
_BRACKET_LINES = re.compile(
    r"^(?:((\d{4}-[01]\d-[0-3]\d)[T ]([0-2]\d:[0-5]\d:[0-6]\d))[^\S\n]+\[([A-Za-z]+)\][^\S\n]+"
    r"([\w.\-/]+):[^\S\n]+(.*)|.*)$",
    re.MULTILINE,
)
_AS_WRITTEN = frozenset(raw for raw, level in LEVEL_OF.items() if raw == level)


def _bracket(clock: Clock) -> Batched:
    """Written by hand: the default pipeline's benchmark is this format."""
    match = _BRACKET.fullmatch
    days = clock.days
    iso = clock.iso
    findall = _BRACKET_LINES.findall

    def parse(line: str) -> Record | None:
        m = match(line)
        if m is None:
            return None
        ts, date, hms, frac, zone, raw, component, message = m.groups()
        level = LEVEL_OF.get(raw)
        if level is None:
            return None
        if level == raw and component is not None and frac is None and zone is None:
            off = days.get(date)
            if off:  # the common line, as one dict display
                return {"ts": ts, "time": f"{date}T{hms}{off}", "level": level,
                        "component": component, "message": message}  # fmt: skip
        off = days.get(date) if frac is None and zone is None else None
        time = f"{date}T{hms}{off}" if off else iso(ts)  # the whole day's offset, or work
        rec: Record = {"ts": ts, "time": time} if time is not None else {"ts": ts}
        rec["level"] = level
        if level != raw:
            rec["level_raw"] = raw
        if component is not None:
            rec["component"] = component
        rec["message"] = message
        return rec

    def batch(lines: list[str]) -> list[Record | None]:
        """`parse` of each line, the common ones from one `findall` over them all."""
        found = findall("\n".join(lines))
        if len(found) != len(lines):  # a line with a line break in it
            return list(map(parse, lines))
        recs: list[Record | None] = [
            {"ts": ts, "time": f"{date}T{hms}{off}", "level": raw, "component": component,
             "message": message}
            if raw in _AS_WRITTEN and (off := days.get(date)) else None
            for ts, date, hms, raw, component, message in found
        ]  # fmt: skip
        if None in recs:
            for i, rec in enumerate(recs):
                if rec is None:
                    ts, date, hms, raw, component, message = found[i]
                    level = LEVEL_OF.get(raw) if raw else None
                    off = days.get(date) if level is not None and level != raw else None
                    if off:  # a level written otherwise (WARN)
                        recs[i] = {"ts": ts, "time": f"{date}T{hms}{off}", "level": level,
                                   "level_raw": raw, "component": component,
                                   "message": message}  # fmt: skip
                    else:  # another line, or the first of its day
                        recs[i] = parse(lines[i])
        return recs

    return Batched(parse, batch)


_PIPE = re.compile(
    r"(?P<ts>[^|]*?\d[^|]*?)\s*\|\s*(?P<a>[^|]*?)\s*\|\s*(?P<b>[^|]*?)\s*\|\s?(?P<message>.*)"
)
_COMPACT = re.compile(r"(\d{4})(\d\d)(\d\d)-(\d\d:\d\d:\d\d)[:.](\d+)")


def _pipe(clock: Clock) -> Parser:
    """`ts | LEVEL | component | message`, or `ts|component|pid|message` (HealthApp)."""
    match = _PIPE.fullmatch

    def parse(line: str) -> Record | None:
        if line.count("|") < 3:  # the regex would backtrack through the whole line
            return None
        m = match(line)
        if m is None:
            return None
        ts, a, b, message = m.groups()
        level = LEVEL_OF.get(a)
        rec: Record = {"ts": ts}
        time = clock.iso(ts)
        if time is None and (c := _COMPACT.fullmatch(ts)) is not None:
            time = clock.naive(f"{c[1]}-{c[2]}-{c[3]}", c[4], c[5])
        if time is not None:
            rec["time"] = time
        if level is not None:
            rec["level"] = level
            if level != a:
                rec["level_raw"] = a
            rec["component"] = b
        elif b.isdigit():
            rec["component"] = a
            rec["pid"] = int(b)
        else:
            return None
        rec["message"] = message
        return rec

    return parse


def _short_date(value: str, clock: Clock) -> str | None:
    """Spark's `yy/MM/dd HH:mm:ss` and HDFS's `yyMMdd HHmmss`: the century is ours."""
    digits = value.replace("/", "").replace(":", "").replace(" ", "")
    hms = f"{digits[6:8]}:{digits[8:10]}:{digits[10:12]}"
    return clock.naive(f"20{digits[:2]}-{digits[2:4]}-{digits[4:6]}", hms)


def _golog_time(value: str, clock: Clock) -> str | None:
    return clock.iso(value.replace("/", "-", 2))


def _fatal(m: re.Match[str], clock: Clock, level: str) -> Record:
    """A Go program's panic (its goroutine traces join it: see `multiline`)."""
    return {"level": "FATAL", "message": m["message"]}


FORMATS = [
    LogFormat("bracket", "2026-11-22 10:00:00 [ERROR] API: connection refused", _bracket),
    LogFormat(
        "log4j",
        "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: "
        "Created MRAppMaster for application appattempt_1445144423722_0020_000001",
        leveled(
            rf"(?P<ts>{ISO_TS})\s+(?P<level>[A-Za-z]+)\s+(?:\[(?P<thread>[^\]]*)\]\s+)?"
            rf"(?:(?P<component>{COMPONENT})(?::| -)(?:\s+|$))?(?P<message>.*)"
        ),
    ),
    LogFormat(
        "logback",
        "2026-11-22 10:00:00.123 [main] INFO  com.example.shop.OrderService - order 42 paid",
        leveled(
            r"(?P<ts>(?:\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d(?:[.,]\d+)?)\s+"
            rf"\[(?P<thread>[^\]]*)\]\s+(?P<level>[A-Za-z]+)\s+(?P<component>{COMPONENT})"
            r"\s+-(?: |$)(?P<message>.*)"
        ),
    ),
    LogFormat(
        "spring",
        "2026-11-22 10:00:00.123  INFO 45469 --- [           main] "
        "o.s.b.w.embedded.tomcat.TomcatWebServer  : Tomcat started on port(s): 8080 (http)",
        leveled(
            rf"(?P<ts>{ISO_TS})\s+(?P<level>[A-Za-z]+)\s+(?P<pid>\d+)\s+---\s+"
            r"(?:\[(?P<application>[^\]]*)\]\s+)?\[\s*(?P<thread>[^\]]*?)\]\s+"
            r"(?P<component>\S+)\s+:(?: |$)(?P<message>.*)"
        ),
    ),
    LogFormat(
        "zookeeper",
        "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:"
        "FastLeaderElection@774] - Notification time out: 3200",
        leveled(
            rf"(?P<ts>{ISO_TS}) - (?P<level>[A-Za-z]+)\s+\[(?P<thread>.*):"
            r"(?P<component>[\w$.]+)@(?P<source_line>\d+)\] - (?P<message>.*)"
        ),
    ),
    LogFormat(
        "oslo",
        "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server "
        '[req-38101a0b-2096-447d-96ea-a692162415ae - - - - -] 10.11.10.1 "GET /v2/servers '
        'HTTP/1.1" status: 200 len: 1893 time: 0.2477829',
        leveled(
            r"(?:(?P<file>\S+\.log\S*) )?(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) "
            r"(?P<pid>\d+) (?P<level>[A-Z]+) (?P<component>[\w.\-]+)"
            r"(?: \[(?P<context>[^\]]*)\])?(?: (?P<message>.*))?"
        ),
    ),
    LogFormat(
        "python",
        "WARNING:urllib3.connectionpool:Retrying after connection broken",
        leveled(r"(?P<level>[A-Z]+):(?P<component>[\w.\-]*):(?P<message>.*)", time=""),
    ),
    LogFormat(
        "python_dash",
        "2026-11-22 10:00:00,123 - billing.worker - ERROR - payment 42 declined",
        leveled(rf"(?P<ts>{ISO_TS}) - (?P<component>\S+) - (?P<level>[A-Za-z]+) - (?P<message>.*)"),
    ),
    LogFormat(
        "pipe",
        "2026-11-22 10:00:00 | WARN | Auth | token expires soon",
        _pipe,
    ),
    LogFormat(
        "spark",
        "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal "
        "handlers for [TERM, HUP, INT]",
        leveled(
            r"(?P<ts>\d\d/\d\d/\d\d \d\d:\d\d:\d\d) (?P<level>[A-Z]+) "
            rf"(?P<component>{COMPONENT}):(?: |$)(?P<message>.*)",
            time=_short_date,
        ),
    ),
    LogFormat(
        "hdfs",
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
        "blk_38865049064139660 terminating",
        leveled(
            r"(?P<ts>\d{6} \d{6}) (?P<pid>\d+) (?P<level>[A-Z]+) "
            rf"(?P<component>{COMPONENT}):(?: |$)(?P<message>.*)",
            time=_short_date,
        ),
    ),
    LogFormat(
        "windows",
        "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack "
        "v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll",
        leveled(
            r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), (?P<level>[A-Za-z]+)\s+"
            r"(?P<component>\S+)(?:\s+(?P<message>.*))?"
        ),
    ),
    LogFormat(
        "golog",
        "2026/11/22 10:00:00 main.go:42: listening on :8080",
        leveled(
            r"(?P<ts>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?) "
            r"(?:(?P<source>[\w.\-/]+\.go:\d+): )?(?:\[(?P<level>[A-Za-z]+)\] )?"
            r"(?P<message>.*)",
            time=_golog_time,
        ),
    ),
    LogFormat(
        "go_panic",
        "panic: runtime error: index out of range [5] with length 3",
        leveled(r"(?P<message>(?:panic|fatal error): .*)", _fatal, time=""),
    ),
    LogFormat(
        "timestamped",
        "2026-11-22 10:00:00 backup finished, 1432 files",
        plain(rf"(?P<ts>{ISO_TS}):? (?P<message>.*)"),
        catch_all=True,
    ),
]
