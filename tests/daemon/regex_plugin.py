"""A user processor stuck in a C call that holds the interpreter lock: a regular expression
that backtracks for ages (2^64 ways to split the a's), the classic way a filter hangs."""

from __future__ import annotations

import re

_NESTED = re.compile(r"(a+)+$")


def spin(line: str) -> str:
    _NESTED.match("a" * 64 + "!")
    return line
