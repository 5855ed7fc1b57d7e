"""System logs: syslog (RFC 3164, rsyslog's ISO variant, RFC 5424), the supercomputer
logs of the Loghub collection's systems (BGL, Thunderbird, HPC), Android's logcat,
glog/klog, and Debian's dpkg, update-alternatives and apt."""

from __future__ import annotations

import re

from processors.logformats.levels import SYSLOG_SEVERITY
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

_BSD_TS = r"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?"
# `app[pid]: `, `app: `, `sshd(pam_unix)[42]: `, `Google Chrome[42] (addr): ` — a tag with
# spaces only before a [pid]; a line with no tag at all is all message
_TAG = (
    r"(?:(?P<component>[^:\[\s]+|[^:\[]+?(?=\[\d+\]))(?:\[(?P<pid>\d+)\])?"
    r"(?: \((?P<address>[^)]*)\))?: ?)?(?P<message>.*)"
)
_SYSLOG = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<ts>"
    + _BSD_TS
    + r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?P<host>[^\s\[]\S*) "
    + _TAG
)


def bsd_time(clock: Clock, ts: str) -> str | None:
    """`Nov 22 10:00:00[.123]`, the year inferred."""
    month = MONTHS.get(ts[:3])
    rest = ts[3:].split()
    if month is None or len(rest) != 2:
        return None
    hms, _, frac = rest[1].partition(".")
    return clock.parts(None, month, int(rest[0]), hms, frac or None)


def _syslog(clock: Clock) -> Parser:
    match = _SYSLOG.fullmatch

    def parse(line: str) -> Record | None:
        m = match(line)
        if m is None:
            return None
        pri, ts, host, component, pid, address, message = m.groups()
        if component is None and ts[0].isdigit():
            return None  # rsyslog's ISO lines always have a tag: else it is another log
        rec: Record = {"ts": ts}
        time = bsd_time(clock, ts) if ts[0].isalpha() else clock.iso(ts)
        if time is not None:
            rec["time"] = time
        if pri is not None:
            number = int(pri)
            if number > 191:
                return None
            rec["level"] = SYSLOG_SEVERITY[number % 8]
            rec["level_raw"] = number % 8
            rec["facility"] = number // 8
        rec["host"] = host
        if component is not None:
            rec["component"] = component
        if pid is not None:
            rec["pid"] = int(pid)
        if address is not None:
            rec["address"] = address
        rec["message"] = message
        return rec

    return parse


_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<version>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) "
    r"(?P<procid>\S+) (?P<msgid>\S+) "
    r'(?P<sd>-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: \ufeff?(?P<message>.*))?'
)


def _rfc5424(clock: Clock) -> Parser:
    match = _RFC5424.fullmatch

    def parse(line: str) -> Record | None:
        m = match(line)
        if m is None:
            return None
        pri, _version, ts, host, app, procid, msgid, sd, message = m.groups()
        number = int(pri)
        if number > 191:
            return None
        rec: Record = {}
        if ts != "-":
            rec["ts"] = ts
            time = clock.iso(ts)
            if time is not None:
                rec["time"] = time
        rec["level"] = SYSLOG_SEVERITY[number % 8]
        rec["level_raw"] = number % 8
        rec["facility"] = number // 8
        for key, value in (("host", host), ("component", app), ("msgid", msgid)):
            if value != "-":
                rec[key] = value
        if procid != "-":
            rec["pid"] = int(procid) if procid.isdigit() else procid
        if sd != "-":
            rec["structured_data"] = sd
        rec["message"] = message or ""
        return rec

    return parse


def _epoch_time(m: re.Match[str], clock: Clock, level: str) -> Record:
    """BGL and Thunderbird write the time twice: seconds since 1970 (the instant), and
    the local clock's text (kept as `ts`)."""
    rec = fields(m, "level", "epoch")
    frac = rec["ts"].rpartition(".")[2] if m["ts"].count(".") == 3 else ""
    time = clock.epoch(int(m["epoch"]))
    if time is not None:
        rec["time"] = time.replace("Z", f".{frac}Z") if frac else time
    if level:
        put_level(rec, m["level"], level)
    if "pid" in rec:
        rec["pid"] = int(rec["pid"])
    return ordered(rec)


def _logcat_time(m: re.Match[str], clock: Clock, level: str) -> Record:
    rec = fields(m, "level")
    ts = rec["ts"]
    year = int(ts[:4]) if len(ts) > 18 else None
    date, _, rest = ts[-18:].partition(" ")
    hms, _, frac = rest.partition(".")
    time = clock.parts(year, int(date[:2]), int(date[3:5]), hms, frac)
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    rec["pid"], rec["tid"] = int(rec["pid"]), int(rec["tid"])
    return ordered(rec)


def _glog_time(m: re.Match[str], clock: Clock, level: str) -> Record:
    date, hms, frac = m["date"], m["hms"], m["frac"]
    rec: Record = {"ts": f"{date} {hms}.{frac}"}
    time = clock.parts(None, int(date[:2]), int(date[2:]), hms, frac)
    if time is not None:
        rec["time"] = time
    put_level(rec, m["level"], level)
    rec["thread"] = int(m["thread"])
    rec["component"] = m["file"]
    rec["source_line"] = int(m["line"])
    rec["message"] = m["message"]
    return rec


_DPKG_PACKAGE = {"status": 2, "install": 1, "upgrade": 1, "configure": 1, "trigproc": 1,
                 "remove": 1, "purge": 1}  # fmt: skip


def _dpkg(m: re.Match[str], clock: Clock, level: str) -> Record:
    """Each action is the component; the message is the whole text after the time (so
    templates keep the action); the package is picked out."""
    ts, action, message = m["ts"], m["action"], m["message"]
    rec: Record = {"ts": ts}
    time = clock.iso(ts)
    if time is not None:
        rec["time"] = time
    rec["component"] = action
    words = message.split()
    at = _DPKG_PACKAGE.get(action)
    if at is not None and len(words) > at:
        rec["package"] = words[at]
    rec["message"] = message
    return rec


_APT_KEY = re.compile(r"([A-Z][\w-]*): (.*)")


def _apt_history(clock: Clock) -> Joining:
    """A history stanza's `Start-Date` line is the record; its `Key: value` lines become
    its fields (`Commandline` its message, an `Error` makes it an ERROR)."""
    start = leveled(r"Start-Date: (?P<ts>\d{4}-\d\d-\d\d  \d\d:\d\d:\d\d)", _apt_start)

    def absorb(rec: Record, line: str) -> bool:
        m = _APT_KEY.fullmatch(line)
        if m is None:
            return not line.strip()  # the blank line between stanzas
        key = m[1].lower().replace("-", "_")
        if key == "commandline":
            rec["message"] = m[2]
            return True
        if key == "error":
            rec["level"] = "ERROR"
        if key not in rec:
            rec[key] = m[2]
        return True

    return Joining(start(clock), absorb)


def _apt_start(m: re.Match[str], clock: Clock, level: str) -> Record:
    ts = m["ts"]
    rec: Record = {"ts": ts}
    time = clock.naive(ts[:10], ts[-8:])
    if time is not None:
        rec["time"] = time
    rec["level"] = "INFO"
    rec["message"] = ""
    return rec


_TERM_START = re.compile(r"Log (?:started|ended): (\d{4}-\d\d-\d\d)  (\d\d:\d\d:\d\d)")
_TERM_LEVEL = re.compile(r"(?:E: |dpkg: error|Errors were encountered|(W: |dpkg: warning))")


def _apt_term(clock: Clock) -> Parser:
    """apt's term.log: dpkg's output between `Log started:` and `Log ended:` lines; each
    line a record, timed by the session's start."""
    session: list[str] = []

    def parse(line: str) -> Record | None:
        m = _TERM_START.fullmatch(line)
        if m is not None:
            time = clock.naive(m[1], m[2])
            session[:] = [f"{m[1]}  {m[2]}", time] if time else [f"{m[1]}  {m[2]}"]
        elif not session or not line.strip():
            return None
        rec: Record = {"ts": session[0]}
        if len(session) > 1:
            rec["time"] = session[1]
        severe = _TERM_LEVEL.match(line)
        rec["level"] = "INFO" if severe is None else "WARNING" if severe[1] else "ERROR"
        rec["message"] = line
        return rec

    return parse


_NPM_LEVELS = {"silly": "TRACE", "verbose": "DEBUG", "timing": "DEBUG", "http": "INFO"}


def _npm(m: re.Match[str], clock: Clock, level: str) -> Record:
    """npm's own order: silly < verbose < timing, http < info."""
    raw = m["level"]
    rec: Record = {"seq": int(m["seq"])}
    put_level(rec, raw, _NPM_LEVELS.get(raw, level))
    rec["component"] = m["component"]
    rec["message"] = m["message"]
    return rec


FORMATS = [
    LogFormat(
        "syslog",
        "<11>Nov 22 10:00:03 web01 sshd[4242]: Failed password for root from 203.0.113.9",
        _syslog,
    ),
    LogFormat(
        "rfc5424",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID"
        '@32473 iut="3" eventSource="Application" eventID="1011"] An application event log',
        _rfc5424,
    ),
    LogFormat(
        "thunderbird",
        "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
        "session closed for user root",
        leveled(
            r"(?P<label>\S+) (?P<epoch>\d{9,10}) (?P<date>\d{4}\.\d\d\.\d\d) (?P<node>\S+) "
            rf"(?P<ts>{_BSD_TS}) (?P<host>\S+) {_TAG}",
            _epoch_time,
        ),
    ),
    LogFormat(
        "bgl",
        "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 "
        "R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected",
        leveled(
            r"(?P<label>\S+) (?P<epoch>\d{9,10}) (?P<date>\d{4}\.\d\d\.\d\d) (?P<node>\S+) "
            r"(?P<ts>\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.\d+) (?P<node_repeat>\S+) "
            r"(?P<type>[A-Z]+) (?P<component>[A-Z_]+) (?P<level>[A-Z]+)(?: (?P<message>.*))?",
            _epoch_time,
        ),
    ),
    LogFormat(
        "hpc",
        "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State "
        'Change: Component "alt0" is in the unavailable state (HWID=1973)',
        leveled(
            r"(?P<log_id>\d+) (?P<node>\S+) (?P<component>\S+) (?P<state>\S+) "
            r"(?P<ts>(?P<epoch>\d{9,10})) (?P<flag>\d+) (?P<message>.*)",
            _epoch_time,
        ),
    ),
    LogFormat(
        "logcat",
        "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs "
        "opening app wtoken = AppWindowToken{9f4ef63 token=Token{a64f992}}",
        leveled(
            r"(?P<ts>(?:\d{4}-)?\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s+(?P<pid>\d+)\s+(?P<tid>\d+) "
            r"(?P<level>[VDIWEFA]) (?P<component>.*?)\s*:(?: |$)(?P<message>.*)",
            _logcat_time,
        ),
    ),
    LogFormat(
        "glog",
        'I1122 10:00:00.123456   12345 controller.go:211] "Syncing" pod="default/web-0"',
        leveled(
            r"(?P<level>[IWEF])(?P<date>\d{4}) (?P<hms>\d\d:\d\d:\d\d)\.(?P<frac>\d+)\s+"
            r"(?P<thread>\d+) (?P<file>[^:\s\]]+):(?P<line>\d+)\] (?P<message>.*)",
            _glog_time,
        ),
    ),
    LogFormat(
        "dpkg",
        "2025-06-24 14:36:25 status half-configured libsystemd0:amd64 252.38-1~deb12u1",
        leveled(
            r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) "
            r"(?P<message>(?P<action>startup|status|install|upgrade|remove|purge|configure|"
            r"trigproc|conffile)\b.*)",
            _dpkg,
        ),
    ),
    LogFormat(
        "alternatives",
        "update-alternatives 2025-06-24 14:36:53: link group pager updated to point to "
        "/usr/bin/less",
        leveled(r"(?P<component>[\w.\-]+) (?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d): (?P<message>.*)"),
    ),
    LogFormat(
        "apt_history",
        "Start-Date: 2025-06-24  14:36:25",
        _apt_history,
    ),
    LogFormat(
        "apt_term",
        "Log started: 2025-06-24  14:36:25",
        _apt_term,
    ),
    LogFormat(
        "letter",
        "E: Unable to locate package nginx-extras",
        leveled(r"(?P<level>[DEINW]): (?P<message>.*)", time=""),
    ),
    LogFormat(
        "npm",
        "12 timing npm:load:whichnode Completed in 0ms",
        leveled(
            r"(?P<seq>\d+) (?P<level>silly|verbose|timing|http|info|notice|warn|error) "
            r"(?P<message>(?P<component>\S+?):?(?: .*|$))",
            _npm,
            time="",
        ),
    ),
]
