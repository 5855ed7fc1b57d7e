"""Where a JSON path is in a config's text: the line a `ConfigError`'s key points at.

Errors name a JSON path (`$.nodes[2].options.pattern`); an editor wants a line. `lines()`
walks the text once (only text `json.loads` accepted) and records the line on which each
object member's key, and each array item, starts. `line_of()` looks a path up, walking up
to its nearest parent that is in the text (an error about a missing key points at the
object that lacks it).
"""

from __future__ import annotations

import bisect
import contextlib
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # public, untyped

_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")
_LAST_STEP = re.compile(r"(\.[^.\[]*|\[\d+\])$")


class _Walk:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [i for i, c in enumerate(text) if c == "\n"]
        self.found: dict[str, int] = {}

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def ws(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def value(self, pos: int, path: str) -> int:
        """Record `path` and everything under it; return the position after the value."""
        pos = self.ws(pos)
        self.found.setdefault(path, self.line(pos))
        c = self.text[pos]
        if c == "{":
            return self.members(pos + 1, path)
        if c == "[":
            return self.items(pos + 1, path)
        if c == '"':
            end: int = scanstring(self.text, pos + 1)[1]
            return end
        match = _SCALAR.match(self.text, pos)
        if match is None:
            raise ValueError(f"not JSON at {pos}")
        return match.end()

    def members(self, pos: int, path: str) -> int:
        pos = self.ws(pos)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            start = self.ws(pos)
            key, pos = scanstring(self.text, start + 1)
            self.found[f"{path}.{key}"] = self.line(start)
            pos = self.value(self.ws(pos) + 1, f"{path}.{key}")  # past the ":"
            pos = self.ws(pos)
            if self.text[pos] == "}":
                return pos + 1
            pos += 1  # the ","

    def items(self, pos: int, path: str) -> int:
        pos = self.ws(pos)
        if self.text[pos] == "]":
            return pos + 1
        i = 0
        while True:
            pos = self.ws(self.value(pos, f"{path}[{i}]"))
            if self.text[pos] == "]":
                return pos + 1
            pos += 1
            i += 1


def lines(text: str) -> dict[str, int]:
    """The line (from 1) of every JSON path in `text`, a document `json.loads` accepted."""
    walk = _Walk(text)
    with contextlib.suppress(ValueError, IndexError, RecursionError):
        walk.value(0, "$")  # if it stops, what it found so far is still right
    return walk.found


def line_of(found: dict[str, int], path: str) -> int | None:
    """The line of `path`, or of its nearest parent in `found`."""
    while path:
        if path in found:
            return found[path]
        shorter = _LAST_STEP.sub("", path)
        if shorter == path:
            return None
        path = shorter
    return None
