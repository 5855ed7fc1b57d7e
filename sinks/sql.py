"""Rows into SQLite (stdlib `sqlite3`) or PostgreSQL (psycopg 3, loaded with COPY).

One transaction per input: delete the rows of its `uid`, load the new ones, commit. A
crash before the commit leaves the earlier rows (or none); after it, the re-run deletes
and loads again — so each input's rows are in the table exactly once. Tables (and an index
on `uid`) are created when missing unless `create` is false. A row's `source` is the
input's name as `formats.names.shown` writes it (a name that is not UTF-8 included).

On PostgreSQL every step waits at most `timeout_s`: connecting (psycopg's own total
`connect_timeout`), and each round trip after it — setting the table up, the DELETE, each
block of the COPY, its end, the COMMIT — under `sinks.deadline`'s watchdog, which shuts
the connection's socket down when a step runs past it (a server that stops answering or
reading, a lock that is never granted): the sink is then unavailable.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from itertools import repeat
from typing import Any

from config.sinks import SqlSinkConfig, redact
from formats.names import shown
from sinks.base import Delivery
from sinks.columns import POSTGRES, SQLITE, batches, copy_text, input_line
from sinks.deadline import WATCHDOG, Alarm, shut
from sinks.errors import SinkDataError, SinkUnavailable

_PG_TYPES = {
    "text": "text",
    "integer": "bigint",
    "real": "double precision",
    "boolean": "boolean",
    "timestamp": "timestamptz",
    "json": "jsonb",
}
_SQLITE_TYPES = {
    "text": "TEXT",
    "integer": "INTEGER",
    "real": "REAL",
    "boolean": "INTEGER",
    "timestamp": "TEXT",
    "json": "TEXT",
}
_COPY_LINE = re.compile(r"COPY \S+, line (\d+)")


class SqlTarget:
    """One sink's database connection, opened on first use and kept across files."""

    def __init__(self, config: SqlSinkConfig) -> None:
        self.config = config
        self._conn: Any = None
        self._sock: socket.socket | None = None  # a dup of the connection's, to cut it
        self._alarm: Alarm | None = None
        self._cut = False  # the watchdog cut the connection (a step ran past timeout_s)
        self.location = f"{config.table} in {config.describe()}"

    def _unavailable(self, exc: BaseException, doing: str) -> SinkUnavailable:
        cut, self._cut = self._cut, False
        self.close()
        if cut:
            text = f"no answer within {self.config.timeout_s:g} s (timeout_s)"
        else:
            text = redact(str(exc).strip() or type(exc).__name__, self.config.secrets())
        return SinkUnavailable(self.config.name, f"{self.config.describe()}: {doing}: {text}")

    @contextlib.contextmanager
    def _steps(self) -> Iterator[None]:
        """The block's steps each get `timeout_s`: the first from now, the next from each
        `_step()`; one that runs past it has the connection cut."""
        sock = self._sock

        def cut() -> None:
            self._cut = True
            shut(sock)

        self._alarm = WATCHDOG.arm(self.config.timeout_s, cut)
        try:
            yield
        finally:
            WATCHDOG.cancel(self._alarm)
            self._alarm = None

    def _step(self) -> None:
        """A step is done: the next gets `timeout_s` from now."""
        if self._alarm is not None:
            WATCHDOG.extend(self._alarm, self.config.timeout_s)

    def _columns(self) -> list[tuple[str, str]]:
        return list(self.config.columns) or [("record", "json")]

    def deliver(self, path: str, uid: str, source: str) -> Delivery:
        """Replace `uid`'s rows with one per line of the output file at `path`."""
        started = time.monotonic()
        source = shown(source)
        load = self._sqlite if self.config.backend == "sqlite" else self._postgres
        reused = self._conn is not None
        try:
            with open(path, "rb") as stream:
                n = load(stream, uid, source)
        except SinkUnavailable:
            if not reused:
                raise
            with open(path, "rb") as stream:  # the server restarted since: connect afresh
                n = load(stream, uid, source)
        return Delivery(
            self.config.name, "sql", self.location, round(time.monotonic() - started, 6), rows=n
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        sock, self._sock = self._sock, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if sock is not None:
            sock.close()

    # SQLite

    def _sqlite_connect(self) -> sqlite3.Connection:
        cfg = self.config
        path = cfg.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, timeout=cfg.timeout_s, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # durable at COMMIT, before the input moves
        table = _quoted(cfg.table)
        name = cfg.table.rpartition(".")[2]
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        if found is None:
            if not cfg.create:
                conn.close()
                raise sqlite3.OperationalError(f"table {cfg.table} does not exist (create: false)")
            cols = ", ".join(f'"{c}" {_SQLITE_TYPES[k]}' for c, k in self._columns())
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS {table} ("uid" TEXT NOT NULL, '
                f'"source" TEXT NOT NULL, "line" INTEGER NOT NULL, {cols})'
            )
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{name}_uid" ON {table} ("uid")')
        return conn

    def _sqlite(self, stream: Any, uid: str, source: str) -> int:
        cfg = self.config
        table = _quoted(cfg.table)
        names = ["uid", "source", "line", *(c for c, _ in self._columns())]
        insert = (
            f"INSERT INTO {table} ({', '.join(map(_quoted, names))}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        try:
            if self._conn is None:
                self._conn = self._sqlite_connect()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "opening the database") from None
        n = 0
        try:
            conn.execute(f'DELETE FROM {table} WHERE "uid" = ?', (uid,))
            for numbers, columns in batches(stream, cfg.name, cfg.columns, SQLITE):
                rows = zip(repeat(uid), repeat(source), numbers, *columns, strict=False)
                conn.executemany(insert, rows)  # (the columns are as long as `numbers`)
                n += len(numbers)
            conn.execute("COMMIT")
        except SinkDataError:
            conn.execute("ROLLBACK")
            raise
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise self._unavailable(exc, "loading rows") from None
        return n

    # PostgreSQL

    def _pg_connect(self) -> None:
        import psycopg  # imported where used: a worker without a PostgreSQL sink never pays
        from psycopg import sql

        cfg = self.config
        conn = psycopg.connect(
            cfg.url,
            connect_timeout=max(int(cfg.timeout_s), 1),
            autocommit=True,
            application_name="folderd",
            options="-c TimeZone=UTC",  # a naive timestamp is UTC, as in SQLite
            # a dead peer is found out by TCP too (the watchdog bounds every step anyway)
            keepalives=1,
            keepalives_idle=max(int(cfg.timeout_s), 1),
            keepalives_interval=max(int(cfg.timeout_s) // 3, 1),
            keepalives_count=3,
            tcp_user_timeout=int(cfg.timeout_s * 3000),
        )
        self._conn = conn
        self._sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        table = sql.Identifier(*cfg.table.split("."))
        with self._steps(), conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (cfg.table,))
            found = conn.execute("SELECT to_regclass(%s)", (cfg.table,)).fetchone()
            if found is None or found[0] is None:
                if not cfg.create:
                    raise psycopg.OperationalError(
                        f"table {cfg.table} does not exist (create: false)"
                    )
                cols = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_PG_TYPES[k]))
                    for c, k in self._columns()
                )
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} (uid text NOT NULL, source text NOT NULL, "
                        "line bigint NOT NULL, {})"
                    ).format(table, cols)
                )
                index = sql.Identifier(f"{cfg.table.rpartition('.')[2]}_uid")
                conn.execute(sql.SQL("CREATE INDEX {} ON {} (uid)").format(index, table))

    def _postgres(self, stream: Any, uid: str, source: str) -> int:
        import psycopg
        from psycopg import sql

        cfg = self.config
        try:
            if self._conn is None or self._conn.closed:
                self.close()
                self._pg_connect()
        except (psycopg.Error, OSError) as exc:
            raise self._unavailable(exc, "connecting") from None
        conn = self._conn
        table = sql.Identifier(*cfg.table.split("."))
        names = ["uid", "source", "line", *(c for c, _ in self._columns())]
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        n = 0
        try:
            with self._steps(), conn.transaction():
                conn.execute(sql.SQL("DELETE FROM {} WHERE uid = %s").format(table), (uid,))
                self._step()
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for numbers, columns in batches(stream, cfg.name, cfg.columns, POSTGRES):
                        copy.write(copy_text(uid, source, numbers, columns))
                        n += len(numbers)
                        self._step()
                self._step()  # the COMMIT
        except psycopg.errors.DataError as exc:  # the server refused a value: name its line
            context = getattr(exc.diag, "context", None) or ""
            m = _COPY_LINE.search(context)
            line = input_line(stream, int(m.group(1))) if m else 0
            raise SinkDataError(
                cfg.name, f"line {line}: {exc.diag.message_primary or exc}", line
            ) from None
        except psycopg.Error as exc:
            raise self._unavailable(exc, "loading rows") from None
        return n


def _quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))
