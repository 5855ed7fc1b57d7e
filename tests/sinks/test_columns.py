"""Records to rows a block at a time: the whole-column conversions (done in C) give what
the value-by-value functions give, and the COPY text PostgreSQL reads back is what psycopg's
own `write_row` loads — on random records of every type, clean and not."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from formats.lineframes import write_frame
from sinks import SinkDataError
from sinks.columns import POSTGRES, SQLITE, Rules, batches, by_row, copy_text
from tests.sinks.servers import Database
from tests.sinks.test_sql import COLUMNS  # one of each type

_moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none()
)
_offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=3))]
)


@st.composite
def _timestamp(draw: st.DrawFn) -> str:
    moment = draw(_moments).replace(tzinfo=draw(_offsets))
    shape = draw(st.sampled_from(["plain", "plain_t", "z", "iso", "date"]))
    whole = moment.replace(microsecond=0)
    if shape == "plain":
        return whole.replace(tzinfo=None).isoformat(" ")
    if shape == "plain_t":
        return whole.replace(tzinfo=None).isoformat()
    if shape == "z":
        return whole.replace(tzinfo=None).isoformat() + "Z"
    if shape == "date":
        return moment.date().isoformat()
    return moment.isoformat(draw(st.sampled_from(["T", " "])))


_texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=6,
)
# per column: values its whole-column path takes, and anything at all
_CLEAN = {
    "ts": _timestamp(),
    "level": st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
    ),
    "n": st.integers(-(1 << 63), (1 << 63) - 1),
    "x": st.floats(allow_nan=False, allow_infinity=False),
    "ok": st.booleans(),
    "extra": _json_values,
}
_ANY = {
    "ts": _timestamp() | _texts | st.integers(),
    "level": _texts
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans(),
    "n": st.integers(-(1 << 65), 1 << 65)
    # orjson reads integers up to 2**64 - 1, floats beyond
    | st.sampled_from(
        [1 << 63, (1 << 64) - 1, (1 << 63) - 1, -(1 << 63), "12", " 7 ", "x", 1.0, 1.5, True]
    ),
    "x": st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(1 << 60), 1 << 60)
    | st.sampled_from(["1e3", "nan", "inf", "-inf", "x"]),
    "ok": st.booleans() | st.sampled_from([0, 1, 2, "yes", "F", "maybe"]),
    "extra": _json_values,
}


@st.composite
def _line(draw: st.DrawFn, clean: bool, nulls: bool) -> bytes:
    """One line of a numbered output's content: usually a record, sometimes not."""
    if not clean and draw(st.integers(0, 20)) == 0:
        return draw(st.sampled_from([b"plain text", b"[1, 2]", b'"a\tstring"', b"{bro\tken"]))
    record: dict[str, Any] = {}
    for name, _ in COLUMNS:
        if nulls and draw(st.integers(0, 9)) == 0:
            continue  # missing: NULL
        odd = not clean and draw(st.integers(0, 2)) == 0
        record[name] = (
            None
            if nulls and draw(st.integers(0, 9)) == 0
            else draw((_ANY if odd else _CLEAN)[name])
        )
    separators = draw(st.sampled_from([(", ", ": "), (",\t", ":\t")]))  # a tab is JSON space
    return json.dumps(record, ensure_ascii=draw(st.booleans()), separators=separators).encode()


Frames = list[tuple[list[int] | range, list[bytes]]]  # a numbered output: lines, numbered


@st.composite
def _outputs(draw: st.DrawFn, mixed: bool = True) -> Frames:
    """A numbered output's frames: whole frames clean (each value's type as its column
    wants) or, when `mixed`, not; numbered as a copy route does (consecutive lines) or as a
    node's batch (gaps, repeats, the end of file's 0)."""
    frames: Frames = []
    number = 0
    for _ in range(draw(st.integers(1, 6))):
        clean = draw(st.booleans()) if mixed else True
        lines = draw(st.lists(_line(clean, draw(st.booleans())), min_size=1, max_size=8))
        if draw(st.booleans()):
            numbers: list[int] | range = range(number + 1, number + 1 + len(lines))
        else:
            numbers = [number + i + draw(st.integers(0, 2)) for i in range(len(lines))]
            numbers[-1] = 0 if draw(st.integers(0, 4)) == 0 else numbers[-1]
        number = max(number, *numbers) + 1
        frames.append((numbers, lines))
    return frames


def _lines(*lines: bytes) -> Frames:
    return [(range(1, len(lines) + 1), list(lines))]


def _file(frames: Frames) -> io.BytesIO:
    f = io.BytesIO()
    for numbers, lines in frames:
        write_frame(f, b"".join(line + b"\n" for line in lines), numbers)
    f.seek(0)
    return f


def _typed(
    values: list[list[Any]], columns: tuple[tuple[str, str], ...], rules: Rules
) -> list[list[tuple[type, Any]]]:
    """Each value with its type (1, 1.0 and True differ); for PostgreSQL a timestamp of a
    plain shape is the text the server is sent, and it reads it as `fromisoformat` does
    (`test_copy_text_loads_what_write_row_loads` checks that with the server)."""
    kinds = [kind for _, kind in columns] or ["json"]

    def typed(v: Any, kind: str) -> tuple[type, Any]:
        if rules is POSTGRES and kind == "timestamp" and type(v) is str:
            v = datetime.fromisoformat(v)
        return type(v), repr(v) if type(v) is float else v

    return [[typed(v, kind) for v in col] for col, kind in zip(values, kinds, strict=True)]


def _by_value(frames: Frames, columns: tuple[tuple[str, str], ...], rules: Rules) -> Any:
    """The reference: every line converted value by value, or the error it raises."""
    numbers = [n for frame_numbers, _ in frames for n in frame_numbers]
    raws = [line for _, lines in frames for line in lines]
    try:
        return _typed(by_row(numbers, raws, "s", columns, rules.one), columns, rules)
    except SinkDataError as exc:
        return str(exc)


def _by_block(
    frames: Frames, columns: tuple[tuple[str, str], ...], rules: Rules, block: int
) -> Any:
    try:
        blocks = list(batches(_file(frames), "s", columns, rules, block))
    except SinkDataError as exc:
        return str(exc)
    numbers = [n for block_numbers, _ in blocks for n in block_numbers]
    assert numbers == [n for frame_numbers, _ in frames for n in frame_numbers]
    assert all(len(col) == len(b[0]) for b in blocks for col in b[1])
    width = max(len(columns), 1)
    return _typed([[v for _, b in blocks for v in b[i]] for i in range(width)], columns, rules)


@pytest.mark.parametrize("rules", [POSTGRES, SQLITE], ids=["postgresql", "sqlite"])
@settings(max_examples=300, deadline=None)
@given(
    frames=_outputs(),
    block=st.sampled_from([1, 200, 1 << 18]),
    picked=st.sets(st.sampled_from(COLUMNS)),
)
# each a value one step past what its column's whole-column conversion takes as it is
@example(frames=_lines(b'{"n": 9223372036854775808}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"n": -9223372036854775808}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"x": 3}', b'{"x": 0.5}'), block=1 << 18, picked=set(COLUMNS))
@example(frames=_lines(b'{"ok": 1}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"level": 7}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"level": "a\\u0000"}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"ts": "2026-11-22T10:00:00Z"}'), block=1, picked=set(COLUMNS))
@example(frames=_lines(b'{"ts": "2026-11-22 10:00:00+05:30"}'), block=1, picked=set(COLUMNS))
@example(
    frames=_lines(b'{"ts": "2026-11-22"}', b'{"ts": null}'), block=1 << 18, picked=set(COLUMNS)
)
@example(
    frames=_lines(b'{"extra": null, "ts": "2026-11-22 10:00:00"}'), block=1, picked=set(COLUMNS)
)
def test_blocks_convert_exactly_as_value_by_value(
    rules: Rules, frames: Frames, block: int, picked: set[tuple[str, str]]
) -> None:
    columns = tuple(c for c in COLUMNS if c in picked)  # none: the one JSON column
    assert _by_block(frames, columns, rules, block) == _by_value(frames, columns, rules)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frames=_outputs(mixed=False))
def test_copy_text_loads_what_write_row_loads(postgres: Database, frames: Frames) -> None:
    """The same blocks COPYed as our text and row by row through psycopg: the same rows
    in the table, or the same refusal (jsonb takes no NUL, for one)."""
    import psycopg

    try:
        blocks = list(batches(_file(frames), "s", COLUMNS, POSTGRES))
    except SinkDataError:
        return  # an integer beyond 64 bits, say: refused before any COPY
    names = ", ".join(["uid", "source", "line", *(n for n, _ in COLUMNS)])
    decl = ("uid text, source text, line bigint, ts timestamptz, level text, n bigint, "
            "x double precision, ok boolean, extra jsonb")  # fmt: skip

    def load(conn: psycopg.Connection[Any], table: str, by_text: bool) -> object:
        conn.execute(f"CREATE TABLE {table} ({decl})")
        try:
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for numbers, columns in blocks:
                    if by_text:  # a uid and source path that need escapes
                        copy.write(copy_text("u\t1", "a\\b.log", numbers, columns))
                    else:
                        for row in zip(numbers, *columns, strict=True):
                            copy.write_row(("u\t1", "a\\b.log", *row))
        except psycopg.errors.DataError as exc:
            return exc.sqlstate, exc.diag.message_primary
        return conn.execute(f"SELECT * FROM {table} ORDER BY line").fetchall()

    with psycopg.connect(postgres.url, autocommit=True, options="-c TimeZone=UTC") as conn:
        conn.execute("DROP TABLE IF EXISTS by_text, by_row")
        assert load(conn, "by_text", True) == load(conn, "by_row", False)
