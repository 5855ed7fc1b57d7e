"""The numbered output: the temp file a SQL sink loads its rows from, each line with the
number of the input line it came from. processors/outputs.py writes it (the output of a
tag delivered to a SQL sink), sinks/columns.py reads it; this module is the layout both
keep, so neither imports the other.

A sequence of frames, one per write: a header of three little-endian 64-bit integers —
the bytes of text, the lines in it, and the first line's number, or -1 when the numbers
follow as one int64 per line — then the text, UTF-8, every line ending in "\\n" and none
holding another. A block of consecutive input lines (a copy route's) needs only its first
number; any other batch (filtered, fanned out, reordered, or flushed at the end of the
file, whose lines are number 0) carries them all. Neither side looks at a line's content
to find its number, so a line may hold anything but a line break.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import IO

_HEADER = struct.Struct("<QQq")
_LISTED = -1  # the header's "first" when every line's number follows it


def write_frame(stream: IO[bytes], text: bytes, numbers: Sequence[int]) -> None:
    """Append one frame: `text`, its lines numbered `numbers` (a `range` of step 1 is
    stored as its first number)."""
    if isinstance(numbers, range) and numbers.step == 1 and numbers.start >= 0:
        stream.write(_HEADER.pack(len(text), len(numbers), numbers.start))
    else:
        stream.write(_HEADER.pack(len(text), len(numbers), _LISTED))
        stream.write(array("q", numbers).tobytes())
    stream.write(text)


def read_frames(stream: IO[bytes]) -> Iterator[tuple[Sequence[int], bytes]]:
    """(the line numbers, the text) of each frame, in the order they were written."""
    while head := stream.read(_HEADER.size):
        size, n, first = _HEADER.unpack(_exactly(head, _HEADER.size))
        if first == _LISTED:
            numbers: Sequence[int] = array("q", _exactly(stream.read(8 * n), 8 * n))
        else:
            numbers = range(first, first + n)
        yield numbers, _exactly(stream.read(size), size)


def _exactly(data: bytes, size: int) -> bytes:
    if len(data) != size:  # the worker wrote and closed the file whole before delivery
        raise ValueError(f"numbered output cut short: {len(data)} of {size} bytes")
    return data
