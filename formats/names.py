"""Names are bytes: how a file name is written wherever it leaves the filesystem.

Linux allows any byte but `/` and NUL in a name; Python reads the bytes that are not UTF-8
as lone surrogates (`os.fsdecode`, "surrogateescape"), which JSON, SQLite, logs and HTML
cannot carry. Inside folderd a name stays that `str`, so every move uses its exact bytes;
at every way out (the journal, summaries, logs, events, pages, SQL rows) it is written
`shown()`, and `parsed()` gives the real name back.

The shown form is the name itself unless it holds a byte that is not UTF-8: that byte is
written `\\xNN` (two lowercase hex digits). A backslash is doubled only where it would
otherwise read as an escape (followed by `x` or by another backslash), so
`back\\slash.log` is shown unchanged while `b'bad\\xff.log'` is shown `bad\\xff.log` and the
real name `bad\\xff.log` (backslash, x, f, f) is shown `bad\\\\xff.log`. The map is
injective and `parsed(shown(n)) == n` for every name.
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPE = re.compile(r"\\(?:\\|x[0-9A-Fa-f]{2})")


def clean(name: str) -> bool:
    """True when `name` is valid UTF-8 (no byte of it needs escaping)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """`name` as text that JSON, SQLite, logs and pages carry, and `parsed` reverses."""
    if "\\" not in name and (name.isascii() or clean(name)):
        return name
    out: list[str] = []
    for i, ch in enumerate(name):
        if "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch == "\\" and _reads_as_escape(name, i + 1):
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def _reads_as_escape(name: str, at: int) -> bool:
    """Whether what is shown from `name[at]` on starts with `x` or a backslash."""
    if at >= len(name):
        return False
    nxt = name[at]
    return nxt in "x\\" or "\udc80" <= nxt <= "\udcff"


def parsed(text: str) -> str:
    """The real name (surrogateescape `str`) that `shown()` wrote as `text`."""
    if "\\" not in text:
        return text

    return _ESCAPE.sub(_unescape, text)


def _unescape(m: re.Match[str]) -> str:
    s = m.group(0)
    if s == "\\\\":
        return "\\"
    byte = int(s[2:], 16)
    # shown() writes `\xNN` only for a byte that is not UTF-8 (0x80 and up); below that
    # the text was never an escape and is taken as it is.
    return chr(0xDC00 + byte) if byte >= 0x80 else s


def as_text(text: str) -> str:
    """Free text that may hold a name (a message, a reason): itself when it is valid
    UTF-8, else with the bytes that are not written as `shown()` writes them."""
    return text if text.isascii() or clean(text) else shown(text)


def texts(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with every string `as_text`: the
    fallback of a writer whose JSON encoder refused a string that is not UTF-8."""
    if isinstance(value, str):
        return as_text(value)
    if isinstance(value, dict):
        return {texts(k): texts(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [texts(v) for v in value]
    return value


NAME_FIELDS = frozenset({"path", "from_path", "to_path", "first", "file", "filename"})


def log_fields(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: names (`path=`, `from_path=`…) written `shown()`, and any
    other text `as_text()`, so a log line can always be rendered (JSON or console)."""
    for key, value in event.items():
        if type(value) is str and not value.isascii():
            event[key] = shown(value) if key in NAME_FIELDS else as_text(value)
        elif type(value) is str and key in NAME_FIELDS and "\\" in value:
            event[key] = shown(value)
    return event
