"""Log levels onto one set: TRACE, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, FATAL.

Every spelling a format writes (`E`, `W`, `Info`, `warn`, `SEVERE`, `err`, `crit`,
PostgreSQL's `LOG` and `DEBUG1`…`DEBUG5`, Apache's `trace1`…`trace8`, logcat's `V`,
npm's `silly`, syslog's severities) maps to one of them; `level()` answers with one
dict lookup for the spellings the formats produce (upper, lower and title case are all in
the table).
"""

from __future__ import annotations

LEVELS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "FATAL")

# syslog severity 0..7 (RFC 5424 section 6.2.1): emerg and alert are worse than crit
SYSLOG_SEVERITY = ("FATAL", "FATAL", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")

_WORDS = {
    "TRACE": "trace trc t v verbose finest finer silly full_debug "
    + " ".join(f"trace{i}" for i in range(1, 9)),
    "DEBUG": "debug dbg d fine config timing mid_debug "
    + " ".join(f"debug{i}" for i in range(1, 6)),
    "INFO": "info information informational inf i log http event statement detail hint "
    "context query location audit",
    "NOTICE": "notice note n",
    "WARNING": "warning warn wrn w caution",
    "ERROR": "error err eror e severe failure fail fatal_error maj",
    "CRITICAL": "critical crit c",
    "FATAL": "fatal f panic emerg emergency alert a assert",
}

LEVEL_OF: dict[str, str] = {}
for _level, _words in _WORDS.items():
    for _word in _words.split():
        for _form in (_word, _word.upper(), _word.title()):
            LEVEL_OF[_form] = _level

# bunyan and pino write numbers: 10 trace … 60 fatal
NUMERIC = {10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARNING", 50: "ERROR", 60: "FATAL"}


def level(raw: str) -> str | None:
    """The level a word names, or None when it names none."""
    found = LEVEL_OF.get(raw)
    if found is None:
        found = LEVEL_OF.get(raw.strip().lower())
    return found


def set_level(rec: dict[str, object], raw: object) -> None:
    """`rec["level"]` normalised from `raw` (a word, a bunyan number, or a syslog
    severity digit as text), and `rec["level_raw"]` when that changed it; a word that names
    no level stays, upper-cased, so nothing a log says is lost."""
    if isinstance(raw, str):
        found = level(raw)
        if found is None:
            found = SYSLOG_SEVERITY[int(raw)] if raw.isdigit() and len(raw) == 1 else raw.upper()
    elif isinstance(raw, int) and not isinstance(raw, bool):
        found = NUMERIC.get(raw) or (SYSLOG_SEVERITY[raw] if 0 <= raw < 8 else str(raw))
    else:
        return
    rec["level"] = found
    if found != raw:
        rec["level_raw"] = raw
