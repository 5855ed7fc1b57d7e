"""A numbered output (what a SQL sink reads) written a chunk at a time: each value's line
preceded by its origin, whatever mix of text, records and rows the chunk holds."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processors.outputs import _encode_numbered, _encode_one

_int64 = st.integers(-(1 << 63), (1 << 63) - 1)
_values = st.one_of(
    st.text(max_size=8),
    st.dictionaries(st.text(max_size=4), _int64 | st.text(max_size=4), max_size=3),
    st.dictionaries(_int64, _int64, max_size=2),  # keys orjson needs an option for
    st.lists(st.text(max_size=4), max_size=3),
)


@given(chunk=st.lists(st.tuples(st.integers(1, 10**9), _values), min_size=1, max_size=20))
def test_a_numbered_chunk_is_each_values_line_after_its_origin(
    chunk: list[tuple[int, Any]],
) -> None:
    origins = [o for o, _ in chunk]
    values = [v for _, v in chunk]
    assert _encode_numbered(values, origins) == "".join(f"{o}\t{_encode_one(v)}" for o, v in chunk)
