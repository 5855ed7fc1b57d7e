"""Log formats: each a parser from one line to a record, and auto detection per file.

`FORMATS` holds every built-in format by name, in the order auto detection prefers them
on a tie (specific before generic). `detect(parsers, sample)` tries them all on a file's
first lines and ranks them by how many they parse; `parse_log` then tries the winner
first on every line, and the others only for lines it does not parse. `custom` turns a
user's format string or regular expression into one more format; `multiline` joins stack
traces and indented lines to the record they belong to; `levels` and `times` normalise.
"""

from __future__ import annotations

from collections.abc import Sequence, Set

from processors.logformats import apps, servers, structured, system
from processors.logformats.multiline import CONTINUATION
from processors.logformats.spec import Joining, LogFormat, Parser

_ORDER = [
    *("journald", "docker", "cri", "json", "logfmt", "rfc5424", "syslog", "thunderbird"),
    *("bgl", "hpc", "combined", "nginx_error", "apache_error", "postgres", "ganesha"),
    *("proxifier", "logcat", "glog", "dpkg", "alternatives", "apt_history", "apt_term"),
    *("npm", "bracket", "spring", "zookeeper", "python_dash", "logback", "oslo", "windows"),
    *("spark", "hdfs", "log4j", "pipe", "python", "golog", "go_panic", "letter"),
    "timestamped",
]
_ALL = {f.name: f for f in (*apps.FORMATS, *servers.FORMATS, *structured.FORMATS,
                            *system.FORMATS)}  # fmt: skip
if sorted(_ALL) != sorted(_ORDER):  # every format placed once: a new one must be ordered
    raise RuntimeError(f"logformats: order {sorted(set(_ALL) ^ set(_ORDER))}")
FORMATS: dict[str, LogFormat] = {name: _ALL[name] for name in _ORDER}


def detect(
    parsers: Sequence[tuple[str, Parser]], sample: Sequence[str], joins: Set[str] = frozenset()
) -> list[tuple[str, int]]:
    """Each parser's name with how many lines of `sample` it parses, best first (a tie
    keeps the given order). A `Joining` format's own continuation lines count, and for the
    formats named in `joins` the lines that read as a record's continuation (a stack
    trace's). Blank lines are left out of the sample."""
    lines = [line for line in sample if line.strip()]
    scores = []
    for name, parse in parsers:
        absorb = parse.absorb if isinstance(parse, Joining) else None
        hits = 0
        last = None
        for line in lines:
            try:
                rec = parse(line)
                if rec is not None:
                    last = rec
                    hits += 1
                elif last is None:
                    continue
                elif (absorb is not None and absorb(last, line)) or (
                    name in joins and CONTINUATION.match(line)
                ):
                    hits += 1
            except Exception:  # a custom regex's odd group, say: not this format
                break
        scores.append((name, hits))
    order = {name: i for i, (name, _) in enumerate(parsers)}
    return sorted(scores, key=lambda s: (-s[1], order[s[0]]))


__all__ = ["FORMATS", "LogFormat", "Parser", "detect"]
