"""Names are bytes: every name the filesystem allows is shown as text and read back."""

from __future__ import annotations

import os

import orjson
from hypothesis import given
from hypothesis import strategies as st

from formats.names import clean, parsed, shown

# Any bytes but "/" and NUL, weighted towards the ones that need escaping.
name_bytes = st.lists(
    st.one_of(
        st.sampled_from([b"\\", b"x", b"\xff", b"\x80", b"f", b"0", b"\xc3\xa9", b"\n"]),
        st.binary(min_size=1, max_size=1).filter(lambda b: b not in (b"/", b"\0")),
    ),
    min_size=1,
    max_size=12,
).map(b"".join)


@given(name_bytes)
def test_every_name_round_trips_through_its_shown_form(raw: bytes) -> None:
    name = os.fsdecode(raw)
    text = shown(name)
    assert clean(text)  # JSON, SQLite and logs carry it
    orjson.dumps(text)
    assert os.fsencode(parsed(text)) == raw


@given(name_bytes, name_bytes)
def test_two_names_never_share_a_shown_form(a: bytes, b: bytes) -> None:
    if a != b:
        assert shown(os.fsdecode(a)) != shown(os.fsdecode(b))


def test_a_clean_name_is_shown_as_it_is() -> None:
    for name in ["app.log", "back\\slash.log", "é t\n-x", "a\\", "\\s"]:
        assert shown(name) == name


def test_bytes_that_are_not_utf8_are_written_as_hex_escapes() -> None:
    assert shown(os.fsdecode(b"bad\xff.log")) == "bad\\xff.log"
    assert shown("bad\\xff.log") == "bad\\\\xff.log"  # the real name with a backslash
    assert parsed("bad\\\\xff.log") == "bad\\xff.log"
