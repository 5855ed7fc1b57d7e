"""The built-in processors, by the name a config's `use` gives them: one explicit table.

Plugins are not registered here: a config names them by dotted path (`pkg.mod:Name`).
"""

from __future__ import annotations

from processors.aggregates import Aggregate, Dedupe
from processors.line_routers import Filter, Pass, TagLevel, TagRegex
from processors.logparse import ParseLog
from processors.lookup import HttpLookup
from processors.records import CsvRecords, Profile
from processors.templates import Templates
from processors.transforms import (
    Count,
    Join,
    Lower,
    Number,
    Replace,
    SnakeCase,
    Split,
    Strip,
    Upper,
)
from processors.validators import CsvValidate, JsonValidate

BUILTINS: dict[str, type] = {
    # line routers (where each line goes next: processors/line_routers.py)
    "pass": Pass,  # every line on, unchanged, to every `to` tag (fan-out by copy)
    "filter": Filter,  # keep lines matching include / not matching exclude
    "tag_regex": TagRegex,  # tag by the first (or every) matching regex rule
    "tag_level": TagLevel,  # tag by log level (a record's field or a level word)
    # transforms
    "upper": Upper,
    "lower": Lower,
    "strip": Strip,
    "snake_case": SnakeCase,
    "replace": Replace,  # regex replace
    "split": Split,  # fan-out on a delimiter
    "join": Join,  # fan-in: N lines become one
    "number": Number,  # line numbering
    "count": Count,  # line counter (into the summary)
    # parsing and validation
    "parse_log": ParseLog,  # log lines in 40 formats into records (JSON lines)
    "csv_validate": CsvValidate,  # CSV rows against a schema
    "json_validate": JsonValidate,  # JSON lines against required keys and types
    "csv_records": CsvRecords,  # CSV rows into records named by the header
    # state across lines
    "dedupe": Dedupe,
    "aggregate": Aggregate,  # counts by tag or field, into the summary
    "profile": Profile,  # per-column facts of records, into the summary
    "templates": Templates,  # message templates per level (drain3), into the summary
    # enrichment
    "http_lookup": HttpLookup,  # each record looked up over HTTP, the answer merged in
}
