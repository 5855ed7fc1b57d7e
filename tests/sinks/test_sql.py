"""Rows into a real SQLite file and a real PostgreSQL cluster: replaced by uid, typed,
refused with the line and column, `source` the shown form of any name; an unreachable
server, or one that stops answering (a lock never granted, a frozen backend mid-COPY, a
server that never completes the connection), is `SinkUnavailable` within `timeout_s`."""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from config.sinks import SqlSinkConfig
from daemon.faults import Fault, cause_of, classify
from formats.names import parsed
from processors.outputs import LinesOutput
from sinks import SinkDataError, SinkUnavailable, Targets
from tests.conftest import wait_until
from tests.hostile_servers import Hostile
from tests.sinks.servers import PG_PASSWORD, Database, Postgres

COLUMNS = (
    ("ts", "timestamp"),
    ("level", "text"),
    ("n", "integer"),
    ("x", "real"),
    ("ok", "boolean"),
    ("extra", "json"),
)
RECORDS = [
    {
        "ts": "2026-11-22 10:00:00",
        "level": "ERROR",
        "n": 1,
        "x": 0.5,
        "ok": True,
        "extra": {"a": [1, 2]},
    },
    {"ts": "2026-11-22T10:00:01Z", "level": "INFO", "n": "2", "x": "1e3", "ok": "false"},
]


def _output(tmp_path: Path, lines: list[object], name: str = "out") -> str:
    """An output as the engine writes one for a SQL sink (a numbered output, here each
    value's input line its position), by the engine's own writer."""
    path = tmp_path / name
    with path.open("wb") as f:
        sink = LinesOutput("rows", lambda suffix, binary: f, None, numbered=True)
        sink.add(lines, range(1, len(lines) + 1))
        sink.write()
    return str(path)


@pytest.fixture
def targets() -> Iterator[Targets]:
    t = Targets()
    yield t
    t.close()


def _sqlite(tmp_path: Path, **kw: object) -> SqlSinkConfig:
    return SqlSinkConfig(f"sqlite:///{tmp_path}/db.sqlite3", "records", name="outputs.rows", **kw)


def test_sqlite_rows_are_typed_and_replaced_by_uid(tmp_path: Path, targets: Targets) -> None:
    cfg = _sqlite(tmp_path, columns=COLUMNS)
    out = _output(tmp_path, RECORDS)
    assert targets.rows(cfg, out, "u1", "a.log").rows == 2
    assert targets.rows(cfg, out, "u1", "a.log").rows == 2  # a re-run: replaced
    targets.rows(cfg, _output(tmp_path, RECORDS[:1], "b"), "u2", "b.log")
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    got = db.execute(
        "SELECT uid, source, line, ts, level, n, x, ok, extra FROM records ORDER BY uid, line"
    ).fetchall()
    assert got == [
        ("u1", "a.log", 1, "2026-11-22T10:00:00+00:00", "ERROR", 1, 0.5, 1, '{"a":[1,2]}'),
        ("u1", "a.log", 2, "2026-11-22T10:00:01+00:00", "INFO", 2, 1000.0, 0, None),
        ("u2", "b.log", 1, "2026-11-22T10:00:00+00:00", "ERROR", 1, 0.5, 1, '{"a":[1,2]}'),
    ]


def test_no_columns_is_one_json_column(tmp_path: Path, targets: Targets) -> None:
    cfg = _sqlite(tmp_path)
    targets.rows(cfg, _output(tmp_path, [{"a": 1}, "plain text"]), "u1", "a.log")
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    assert db.execute("SELECT line, record FROM records").fetchall() == [
        (1, '{"a":1}'),
        (2, '"plain text"'),
    ]


@pytest.mark.parametrize(
    ("record", "column"),
    [
        ({"n": "seven"}, "n"),
        ({"ts": "yesterday"}, "ts"),
        ({"ok": "maybe"}, "ok"),
        ({"level": {"nested": 1}}, "level"),
        ({"x": [1]}, "x"),
        (f'{{"n": {1 << 70}}}', "n"),  # a JSON line copied as it is: orjson writes no such int
    ],
)
def test_a_type_violation_names_line_column_and_value_and_loads_nothing(
    tmp_path: Path, targets: Targets, record: dict[str, object] | str, column: str
) -> None:
    cfg = _sqlite(tmp_path, columns=COLUMNS)
    targets.rows(cfg, _output(tmp_path, RECORDS, "good"), "u1", "a.log")
    with pytest.raises(SinkDataError) as err:
        targets.rows(cfg, _output(tmp_path, [RECORDS[0], record]), "u1", "a.log")
    assert err.value.line == 2 and err.value.column == column
    assert f"line 2: column {column!r}" in str(err.value)
    assert classify(err.value) is Fault.TRANSIENT  # never environment; the worker fails it
    db = sqlite3.connect(tmp_path / "db.sqlite3")  # the transaction rolled back: old rows kept
    assert db.execute("SELECT count(*) FROM records WHERE uid = 'u1'").fetchone() == (2,)


def test_a_text_line_for_declared_columns_is_a_data_error(tmp_path: Path, targets: Targets) -> None:
    with pytest.raises(SinkDataError, match="line 1: not a record"):
        targets.rows(_sqlite(tmp_path, columns=COLUMNS), _output(tmp_path, ["x"]), "u", "a")


def test_create_false_refuses_a_missing_table(tmp_path: Path, targets: Targets) -> None:
    with pytest.raises(SinkUnavailable, match="does not exist"):
        targets.rows(_sqlite(tmp_path, create=False), _output(tmp_path, ["x"]), "u", "a")


def test_postgres_copy_typed_rows_replaced_by_uid(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    cfg = SqlSinkConfig(postgres.url, "records", COLUMNS, name="outputs.rows")
    out = _output(tmp_path, RECORDS)
    for _ in range(2):
        assert targets.rows(cfg, out, "u1", "a.log").rows == 2
    got = postgres.query(
        "SELECT uid, source, line, ts, level, n, x, ok, extra FROM records ORDER BY line"
    )
    assert got == [
        (
            "u1",
            "a.log",
            1,
            datetime(2026, 11, 22, 10, tzinfo=UTC),
            "ERROR",
            1,
            0.5,
            True,
            {"a": [1, 2]},
        ),
        (
            "u1",
            "a.log",
            2,
            datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC),
            "INFO",
            2,
            1000.0,
            False,
            None,
        ),
    ]
    types = dict(
        postgres.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'records'"
        )
    )
    assert types["ts"] == "timestamp with time zone" and types["extra"] == "jsonb"
    with pytest.raises(SinkDataError, match="line 2: column 'n'"):
        targets.rows(cfg, _output(tmp_path, [RECORDS[0], {"n": "x"}], "bad"), "u1", "a.log")
    assert postgres.query("SELECT count(*) FROM records") == [(2,)]


def test_postgres_copy_escapes_tabs_newlines_and_backslashes(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    odd = {"level": "a\tb\\c\nd\re", "extra": {"q": 'say "hi" \\ \t'}}
    cfg = SqlSinkConfig(postgres.url, "records", COLUMNS, name="outputs.rows")
    targets.rows(cfg, _output(tmp_path, [odd]), "u\t1", "dir/a b\\c.log")
    assert postgres.query("SELECT uid, source, level, extra FROM records") == [
        ("u\t1", "dir/a b\\c.log", odd["level"], odd["extra"])
    ]
    raw = SqlSinkConfig(postgres.url, "raw", name="outputs.raw")
    targets.rows(raw, _output(tmp_path, [odd, "tab\there \\ too"], "raw"), "u", "a")
    assert postgres.query("SELECT record FROM raw ORDER BY line") == [(odd,), ("tab\there \\ too",)]


def test_a_value_the_server_refuses_names_its_input_line(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    """jsonb takes no NUL character, which only the server finds: its error names a row
    of the COPY, which the numbered output turns back into the input line (rows that came
    from input lines 4, 9 and 30 of a filtered input, then line 31 of a block)."""
    path = tmp_path / "out"
    with path.open("wb") as f:
        sink = LinesOutput("rows", lambda suffix, binary: f, None, numbered=True)
        sink.add([{"extra": 1}, {"extra": 2}, {"extra": "a\x00b"}], [4, 9, 30])
        sink.write()
        sink.write_block('{"extra": 3}\n', range(31, 32))
    cfg = SqlSinkConfig(postgres.url, "records", COLUMNS, name="outputs.rows")
    with pytest.raises(SinkDataError) as err:
        targets.rows(cfg, str(path), "u1", "a.log")
    assert err.value.line == 30 and str(err.value).startswith("outputs.rows: line 30: ")
    assert postgres.query("SELECT count(*) FROM records") == [(0,)]


def test_postgres_no_columns_is_jsonb(tmp_path: Path, targets: Targets, postgres: Database) -> None:
    cfg = SqlSinkConfig(postgres.url, "public.raw_records", name="outputs.rows")
    targets.rows(cfg, _output(tmp_path, [{"a": 1}, "text"]), "u1", "a.log")
    assert postgres.query("SELECT record FROM raw_records ORDER BY line") == [
        ({"a": 1},),
        ("text",),
    ]


def test_postgres_down_is_unavailable_naming_the_sink_without_its_password(
    tmp_path: Path, targets: Targets, own_postgres: Postgres
) -> None:
    postgres = own_postgres  # stopped and started: a cluster of its own
    cfg = SqlSinkConfig(postgres.url, "records", name="outputs.rows", timeout_s=2)
    out = _output(tmp_path, ["x"])
    targets.rows(cfg, out, "u1", "a.log")
    postgres.stop()
    with pytest.raises(SinkUnavailable) as err:
        targets.rows(cfg, out, "u1", "a.log")
    assert classify(err.value) is Fault.ENVIRONMENT and cause_of(err.value) == "sink_unavailable"
    assert "outputs.rows" in str(err.value) and "***" in str(err.value)
    assert PG_PASSWORD not in str(err.value)
    postgres.start()  # back: the next file reconnects by itself
    assert targets.rows(cfg, out, "u2", "b.log").rows == 1


def test_postgres_wrong_password_is_unavailable(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    cfg = SqlSinkConfig(postgres.url.replace(PG_PASSWORD, "wrong-pw"), "records", name="o.r")
    with pytest.raises(SinkUnavailable, match="password authentication failed") as err:
        targets.rows(cfg, _output(tmp_path, ["x"]), "u1", "a.log")
    assert "wrong-pw" not in str(err.value)


BAD_NAME = os.fsdecode(b"dir/bad\xff name.log")  # not UTF-8: as os.fsdecode reads it


def test_sqlite_source_is_the_shown_name_of_any_name(tmp_path: Path, targets: Targets) -> None:
    targets.rows(_sqlite(tmp_path), _output(tmp_path, ["x"]), "u1", BAD_NAME)
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    [(source,)] = db.execute("SELECT source FROM records").fetchall()
    assert source == "dir/bad\\xff name.log" and parsed(source) == BAD_NAME


def test_postgres_source_is_the_shown_name_of_any_name(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    cfg = SqlSinkConfig(postgres.url, "records", name="outputs.rows")
    targets.rows(cfg, _output(tmp_path, ["x"]), "u1", BAD_NAME)
    targets.rows(cfg, _output(tmp_path, ["y"], "b"), "u2", "dir/bad\\xff name.log")
    got = dict(postgres.query("SELECT uid, source FROM records"))
    assert got == {"u1": "dir/bad\\xff name.log", "u2": "dir/bad\\\\xff name.log"}
    assert parsed(got["u1"]) == BAD_NAME, "two names, two sources, each read back"


@pytest.mark.serial
def test_postgres_a_statement_blocked_past_timeout_s_is_unavailable(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    """Another session holds the table: the DELETE waits for its lock, and is cut."""
    import psycopg

    cfg = SqlSinkConfig(postgres.url, "records", name="outputs.rows", timeout_s=1)
    out = _output(tmp_path, ["x"])
    targets.rows(cfg, out, "u1", "a.log")
    with psycopg.connect(postgres.url) as other:
        other.execute("LOCK TABLE records IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match=r"loading rows: no answer within 1 s") as err:
            targets.rows(cfg, out, "u1", "a.log")
        took = time.monotonic() - started
    assert 0.9 < took < 5, f"{took:.1f} s: two cuts (the kept connection's, a fresh one's)"
    assert classify(err.value) is Fault.ENVIRONMENT
    assert targets.rows(cfg, out, "u1", "a.log").rows == 1, "the lock gone, it connects again"


def _freeze_mid_copy(
    deliver: Callable[[], object], postgres: Database, pid: int
) -> tuple[list[BaseException], float] | None:
    """Run `deliver` in a thread, SIGSTOP the backend `pid` once its COPY is in flight, and
    return what the delivery raised and how long it took after the freeze; None when the COPY
    had finished before the freeze (a fast machine): the delivery then went through."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            deliver()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    copying = "SELECT query LIKE 'COPY%%' AND state = 'active' FROM pg_stat_activity WHERE pid = %s"
    with psycopg.connect(postgres.url, autocommit=True) as watcher:

        def mid_copy() -> bool:
            return bool(watcher.execute(copying, (pid,)).fetchone()[0])  # type: ignore[index]

        try:
            wait_until(lambda: mid_copy() or not thread.is_alive(), 30, "the COPY in flight")
            os.kill(pid, signal.SIGSTOP)
            frozen = time.monotonic()
            froze_mid_copy = mid_copy()  # a stopped backend's entry stays as it was
            if froze_mid_copy:
                thread.join(30)
            took = time.monotonic() - frozen
        finally:
            os.kill(pid, signal.SIGCONT)
    thread.join(30)
    assert not thread.is_alive()
    if not froze_mid_copy:
        assert not failed, failed
        return None
    return failed, took


@pytest.mark.serial
def test_postgres_frozen_mid_copy_is_cut_at_the_deadline(
    tmp_path: Path, targets: Targets, postgres: Database
) -> None:
    """The server process serving the COPY stops (SIGSTOP): its kernel still acknowledges,
    so TCP keepalives see nothing; the step past `timeout_s` is cut."""
    cfg = SqlSinkConfig(postgres.url, "records", name="outputs.rows", timeout_s=2)
    targets.rows(cfg, _output(tmp_path, ["x"]), "u1", "a.log")  # connected: its backend known
    [(pid,)] = postgres.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'folderd'"
        " AND datname = current_database()"
    )
    big = _output(tmp_path, [{"n": i, "pad": "x" * 200} for i in range(200_000)], "big")
    for attempt in range(5):
        frozen = _freeze_mid_copy(
            functools.partial(targets.rows, cfg, big, f"u{attempt}", "big.log"), postgres, pid
        )
        if frozen:
            break
    else:
        pytest.fail("the COPY finished before each of five freezes")
    failed, took = frozen
    # the kept connection is cut at the deadline; the sink tries a fresh one, which either
    # waits on the frozen backend too (cut again: unavailable, the file held) or delivers
    assert took < 9, f"{took:.1f} s after the freeze"
    if failed:
        assert len(failed) == 1 and isinstance(failed[0], SinkUnavailable), failed
        assert "no answer within 2 s (timeout_s)" in str(failed[0])
    else:  # delivered on the fresh connection: the frozen one's COPY must never count too
        rows = "SELECT count(*) FROM records WHERE uid = %s"
        wait_until(lambda: not postgres.query(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}"),
                   30, "the frozen backend gone once it saw its connection cut")  # fmt: skip
        assert postgres.query(rows, f"u{attempt}") == [(200_000,)]


@pytest.mark.parametrize("mode", ["silent", "deaf", "drip"])
@pytest.mark.serial
def test_a_server_that_never_answers_the_connection_is_unavailable(
    tmp_path: Path, targets: Targets, mode: str
) -> None:
    with Hostile(mode, interval=0.2) as server:
        url = f"postgresql://folderd:{PG_PASSWORD}@127.0.0.1:{server.port}/postgres"
        cfg = SqlSinkConfig(url, "records", name="outputs.rows", timeout_s=1)
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match="connecting") as err:
            targets.rows(cfg, _output(tmp_path, ["x"]), "u1", "a.log")
        took = time.monotonic() - started
    assert took < 3, f"{took:.1f} s"
    assert PG_PASSWORD not in str(err.value)
