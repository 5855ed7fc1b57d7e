"""Outputs: terminal tags whose lines are written to `results/<rel_path>.<suffix>`.

A line is written as it is when it is a `str`, as one JSON line (orjson) when it is a
record (`dict`), and as one CSV row when it is a `list` — preceded by the input's CSV
header, if it had one. The output file is opened only when its first line arrives.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import orjson

from processors.base import Line

Parts = list[tuple[list[Line], Sequence[int]]]  # lines with their origins, as they arrived


def in_input_order(parts: Parts) -> tuple[list[Line], list[int]]:
    """Lines of one chunk that arrived in several parts (along routes of different
    lengths), back in input-line order; a stable sort, so lines from one input line keep
    the order they were emitted in. The engine merges a tag's parts with it, a sink its
    rounds'."""
    vals: list[Line] = []
    origs: list[int] = []
    for v, o in parts:
        vals.extend(v)
        origs.extend(o)
    order = sorted(range(len(origs)), key=origs.__getitem__)
    return [vals[i] for i in order], [origs[i] for i in order]


class Sink:
    """One output of one file: buffers a chunk's lines, then writes them in input order."""

    __slots__ = ("_header", "_open", "_stream", "lines", "parts", "suffix")

    def __init__(
        self, suffix: str, open_output: Callable[[str], TextIO], header: list[str] | None
    ) -> None:
        self.suffix = suffix
        self._open = open_output
        self._stream: TextIO | None = None
        self._header = header
        self.parts: Parts = []
        self.lines = 0

    def add(self, values: list[Line], origins: Sequence[int]) -> None:
        self.parts.append((values, origins))

    def write(self) -> None:
        parts, self.parts = self.parts, []
        values = parts[0][0] if len(parts) == 1 else in_input_order(parts)[0]
        if not values:
            return
        stream = self._stream
        if stream is None:
            stream = self._stream = self._open(self.suffix)
            if self._header is not None and isinstance(values[0], list):
                stream.write(_csv_line(self._header))
        stream.write(_encode(values))
        self.lines += len(values)


def _encode(values: list[Line]) -> str:
    first = values[0].__class__
    if first is str:
        try:
            return "\n".join(values) + "\n"
        except TypeError:
            pass
    elif first is dict and all(v.__class__ is dict for v in values):
        try:
            return (b"\n".join(map(orjson.dumps, values)) + b"\n").decode()
        except TypeError:
            pass
    return "".join(map(_encode_one, values))


def _encode_one(value: Line) -> str:
    if isinstance(value, str):
        return value + "\n"
    if isinstance(value, list | tuple):
        return _csv_line(value)
    return orjson.dumps(
        value, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    ).decode()


def _csv_line(row: Sequence[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()
