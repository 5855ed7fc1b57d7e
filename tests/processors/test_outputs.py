"""A numbered output (what a SQL sink reads) written a chunk at a time: each value on one
line, with the number of the input line it came from, whatever mix of text, records and
rows a chunk holds — a value with a line break in it too — and a copy route's blocks."""

from __future__ import annotations

import io
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from formats.lineframes import read_frames
from processors.outputs import LinesOutput

_int64 = st.integers(-(1 << 63), (1 << 63) - 1)
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)  # "\n" and "\r" too
_values = st.one_of(
    _text,
    st.dictionaries(_text, _int64 | _text, max_size=3),
    st.dictionaries(_int64, _int64, max_size=2),  # keys orjson needs an option for
    st.lists(_text, max_size=3),
)
_chunk = st.lists(st.tuples(st.integers(0, 10**9), _values), min_size=1, max_size=20)


class _Opened:
    def __init__(self) -> None:
        self.file = io.BytesIO()
        self.opens: list[tuple[str, bool]] = []

    def __call__(self, suffix: str, binary: bool = False) -> io.BytesIO:
        self.opens.append((suffix, binary))
        return self.file

    def frames(self) -> list[tuple[list[int], list[bytes]]]:
        self.file.seek(0)
        return [(list(n), text.split(b"\n")[:-1]) for n, text in read_frames(self.file)]


def _in_results(value: Any) -> str:
    """What a file of results holds for `value` alone (an output that is not numbered)."""
    text = io.StringIO()
    sink = LinesOutput("rows", lambda suffix, binary=False: text, header=None)
    sink.add([value], [1])
    sink.write()
    return text.getvalue()


def _line(value: Any) -> bytes:
    """What a value's line should hold: its line in a file of results, or its JSON when
    that would be more than one line."""
    line = _in_results(value)
    if line.count("\n") == 1:
        return line[:-1].encode()
    return orjson.dumps(value)


@given(chunks=st.lists(_chunk, min_size=1, max_size=4))
def test_each_value_is_one_line_numbered_by_its_origin(
    chunks: list[list[tuple[int, Any]]],
) -> None:
    opened = _Opened()
    sink = LinesOutput("rows", opened, header=["a", "b"], numbered=True)
    for chunk in chunks:
        sink.add([v for _, v in chunk], [o for o, _ in chunk])
        sink.write()
    assert opened.opens == [("rows", True)]  # opened once, binary, with no CSV header
    expected = [([o for o, _ in c], [_line(v) for _, v in c]) for c in chunks]
    assert opened.frames() == expected
    assert sink.lines == sum(map(len, chunks))


def test_a_copy_routes_blocks_keep_their_first_line_number() -> None:
    opened = _Opened()
    sink = LinesOutput("rows", opened, header=None, numbered=True)
    sink.write_block('{"a": 1}\n{"a": 2}\n', range(1, 3))
    sink.write_block('{"a": 3}', range(3, 4))  # a file's last line, without its "\n"
    assert opened.frames() == [
        ([1, 2], [b'{"a": 1}', b'{"a": 2}']),
        ([3], [b'{"a": 3}']),
    ]
    assert sink.lines == 3
