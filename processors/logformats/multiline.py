"""Multi-line records: the lines after a record that belong to it.

A line that no format parses joins the record before it when it looks like the rest of
that record: an indented line (Java's `\\tat …`, Python's `  File …`, Go's `\\t/src/…`,
any indented continuation), a blank line, Java's `Caused by:`, `Suppressed:` and
`... 12 more`, an exception's own line (`java.lang.IllegalStateException: boom`,
`ValueError: bad value`), Python's `Traceback (most recent call last):` and the sentences
between chained tracebacks, and Go's `goroutine 1 [running]:`, after which every line up to
the next record is the panic's (Go's frames are not indented). Formats whose records are
one line each (JSON, access logs) join nothing.

A record holds at most `max_lines` joined lines and `max_bytes` of them: the lines after
that are not joined (they go where unparsed lines go), so one endless stack trace costs a
bounded amount of memory. Its `message` gets the joined lines after a newline (trailing
blank lines left out), and the record the numbers of its `first_line` and `last_line`.
"""

from __future__ import annotations

import re
from typing import Any

CONTINUATION = re.compile(
    r"[ \t]|$"
    r"|Caused by: |Suppressed: |\.\.\. \d+ (?:more|common frames omitted)"
    r"|Traceback \(most recent call last\):"
    r"|During handling of the above exception|The above exception was the direct cause"
    r"|(?:[\w$]+\.)*[\w$]*(?:Exception|Error|Throwable|Exit|Interrupt|Warning|Fault)(?::|$)"
    r"|goroutine \d+ \[|created by |exit status \d+|\[signal "
)
GO_TRACE = re.compile(r"goroutine \d+ \[|(?:panic|fatal error): ")


class Join:
    """The lines being joined to one record, until it is emitted."""

    __slots__ = ("closed", "count", "ended", "first", "go", "last", "lines", "size")

    def __init__(self, first: int, go: bool = False) -> None:
        self.first = first  # the record's own line number
        self.last = first  # the last line joined that is not blank
        self.lines: list[str] = []
        self.count = 0  # lines joined (or taken in by the record's format)
        self.size = 0  # and their characters
        self.go = go  # inside a Go panic: every line up to the next record is the trace's
        self.closed = False  # at a bound: nothing more joins
        self.ended = False  # an unparsed line came between: nothing more joins

    def room(self, line: str, max_lines: int, max_bytes: int) -> bool:
        """Whether `line` may still join; a record that would pass a bound is closed."""
        if self.closed or self.ended:
            return False
        if self.count >= max_lines or self.size + len(line) + 1 > max_bytes:
            self.closed = True
            return False
        return True

    def add(self, line: str, origin: int) -> None:
        self.lines.append(line)
        self.took(line, origin)
        if not self.go and GO_TRACE.match(line):
            self.go = True

    def took(self, line: str, origin: int) -> None:
        """Count `line` as the record's (its text kept by the caller or here)."""
        self.count += 1
        self.size += len(line) + 1
        if line.strip():
            self.last = origin

    def apply(self, rec: dict[str, Any]) -> None:
        """Put the joined lines into `rec` (its message and line numbers)."""
        lines = self.lines
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            message = rec.get("message")
            head = message if isinstance(message, str) else ""
            rec["message"] = head + "\n" + "\n".join(lines)
        if self.last != self.first:
            rec["first_line"] = self.first
            rec["last_line"] = self.last
        if self.closed:
            rec["truncated"] = True
        self.lines = []


def continues(line: str, join: Join | None) -> bool:
    """Whether `line` (no record itself) reads as the rest of the record before it."""
    if join is not None and join.go:
        return True
    return CONTINUATION.match(line) is not None
