"""Outputs: terminal tags whose lines are written to `results/<rel_path>.<suffix>`.

A line is written as it is when it is a `str`, as one JSON line (orjson) when it is a
record (`dict`), and as one CSV row when it is a `list` — preceded by the input's CSV
header, if it had one. The output file is opened only when its first line arrives.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, TextIO

import orjson

from processors.base import Line

_first = itemgetter(0)


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
        self.parts: list[tuple[list[Line], Sequence[int]]] = []
        self.lines = 0

    def add(self, values: list[Line], origins: Sequence[int]) -> None:
        self.parts.append((values, origins))

    def write(self) -> None:
        parts, self.parts = self.parts, []
        if len(parts) == 1:
            values = parts[0][0]
        else:
            # lines of one chunk that came along routes of different lengths: restore the
            # input order (stable, so lines from one input line keep their emitted order)
            pairs = sorted(
                ((o, v) for vals, origs in parts for o, v in zip(origs, vals, strict=True)),
                key=_first,
            )
            values = [v for _, v in pairs]
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
