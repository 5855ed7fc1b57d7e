"""Built-ins that change lines: upper, lower, strip, snake_case, replace, split, join,
number and count. All of them work on text lines and emit to the node's first `to` tag.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence

from config import ConfigError
from config import values as opt
from processors.base import Context, Line, Outbox


class _Map:
    """A one-to-one transform: the same origins, one call per line."""

    fn: Callable[[str], str]

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def process(self, tag: str, line: Line) -> str:
        return self.fn(line)

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        out.put(self.to, list(map(self.fn, values)), origins)


class Upper(_Map):
    """Upper-cases each line."""

    fn = staticmethod(str.upper)


class Lower(_Map):
    """Lower-cases each line."""

    fn = staticmethod(str.lower)


class Strip(_Map):
    """Strips whitespace (or the given `chars`) from both ends of each line."""

    def __init__(self, chars: str | None = None) -> None:
        self.fn = operator.methodcaller(
            "strip", None if chars is None else opt.string("chars", chars, empty=False)
        )


_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^0-9A-Za-z]+")


def snake_case(text: str) -> str:
    """`HTTPServer errorCount-total` -> `http_server_error_count_total`."""
    return _NON_WORD.sub("_", _WORD_BREAK.sub("_", text)).strip("_").lower()


class SnakeCase(_Map):
    """Turns each line into snake_case (camelCase, spaces and punctuation become `_`)."""

    fn = staticmethod(snake_case)


class Replace(_Map):
    """Regex replace in each line (`replacement` may use \\1 or \\g<name>)."""

    def __init__(
        self, pattern: str, replacement: str = "", count: int = 0, ignore_case: bool = False
    ) -> None:
        flags = re.IGNORECASE if opt.boolean("ignore_case", ignore_case) else 0
        rx = opt.regex("pattern", pattern, flags)
        opt.string("replacement", replacement)
        try:
            rx.sub(replacement, "")
        except re.error as exc:
            raise ConfigError("replacement", f"invalid replacement: {exc}") from None
        count = opt.integer("count", count, 0)
        self.fn = lambda line: rx.sub(replacement, line, count)


class Split:
    """Fans each line out into one line per field separated by `delimiter`."""

    def __init__(
        self,
        delimiter: str = ",",
        strip: bool = False,
        skip_empty: bool = False,
        maxsplit: int = -1,
    ) -> None:
        self.delimiter = opt.string("delimiter", delimiter, empty=False)
        self.strip = opt.boolean("strip", strip)
        self.skip_empty = opt.boolean("skip_empty", skip_empty)
        self.maxsplit = opt.integer("maxsplit", maxsplit, -1)

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def parts(self, line: str) -> list[str]:
        parts = line.split(self.delimiter, self.maxsplit)
        if self.strip:
            parts = [p.strip() for p in parts]
        if self.skip_empty:
            parts = [p for p in parts if p]
        return parts

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, str]]:
        return [(self.to, p) for p in self.parts(line)]

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        vals: list[Line] = []
        origs: list[int] = []
        parts = self.parts
        for value, origin in zip(values, origins, strict=True):
            found = parts(value)
            vals.extend(found)
            origs.extend([origin] * len(found))
        out.put(self.to, vals, origs)


class Join:
    """Fans in: every `count` lines become one, joined by `separator`; the remainder is
    emitted at end of file."""

    def __init__(self, count: int = 2, separator: str = " ") -> None:
        self.count = opt.integer("count", count, 1)
        self.separator = opt.string("separator", separator)
        self.held: list[str] = []

    def process(self, tag: str, line: Line) -> str | None:
        self.held.append(line)
        if len(self.held) < self.count:
            return None
        joined = self.separator.join(self.held)
        self.held = []
        return joined

    def flush(self) -> str | None:
        return self.separator.join(self.held) if self.held else None


class Number:
    """Numbers lines: `format` gets `{n}` (1, 2, … in arrival order, from `start`; or the
    input file's line number with `by: "source"`) and `{line}`."""

    def __init__(self, format: str = "{n}\t{line}", start: int = 1, by: str = "count") -> None:
        self.format = opt.string("format", format)
        try:
            self.format.format(n=1, line="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                "format",
                f"invalid format (use {{n}} and {{line}}): {exc}",
            ) from None
        self.n = opt.integer("start", start, -(1 << 62))
        self.source = opt.choice("by", by, ("count", "source")) == "source"

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def process(self, tag: str, line: Line) -> str:
        text = self.format.format(n=self.n, line=line)
        self.n += 1
        return text

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        fmt = self.format.format
        if self.source:
            numbers: Iterable[int] = origins
        else:
            numbers = range(self.n, self.n + len(values))
            self.n += len(values)
        out.put(self.to, [fmt(n=n, line=v) for n, v in zip(numbers, values, strict=True)], origins)


class Count:
    """Counts the lines that pass (into the summary's aggregates under the node's name) and
    passes them on; with `total_tag`, also emits the total as one line at end of file."""

    def __init__(self, total_tag: str | None = None, pass_lines: bool = True) -> None:
        self.total_tag = opt.optional_tag("total_tag", total_tag)
        self.pass_lines = opt.boolean("pass_lines", pass_lines)
        self.n = 0

    def targets(self, to: tuple[str, ...]) -> list[str]:
        tags = list(to[:1]) if self.pass_lines else []
        return tags + ([self.total_tag] if self.total_tag else [])

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx
        ctx.aggregates[ctx.name] = {"lines": 0}

    def process(self, tag: str, line: Line) -> Line | None:
        self.n += 1
        self.ctx.aggregates[self.ctx.name]["lines"] = self.n
        return line if self.pass_lines else None

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        self.n += len(values)
        self.ctx.aggregates[self.ctx.name]["lines"] = self.n
        if self.pass_lines:
            out.put(self.to, values, origins)

    def flush(self) -> Iterable[tuple[str, Line]] | None:
        return [(self.total_tag, str(self.n))] if self.total_tag else None
