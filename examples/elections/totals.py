"""Per-constituency totals: a view over the transactions table, and a printout of it.

    ELECTIONS_DB=sqlite:///results/elections.sqlite3 python -m examples.elections.totals

The view, `constituency_totals`, is created if missing (once the table exists, i.e. after
the first file), and is kept up to date by the database itself: it is computed from the
rows whenever it is read, so a file that lands, a re-run that replaces an input's rows, or
rows deleted by hand are in the next read. Each transaction (`tx_hash`) counts once, so a
file sent again with different bytes (a corrected export) does not count its transactions
twice; the same bytes sent again are skipped by `--skip-duplicates` before they reach it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

VIEW = """
{create} constituency_totals AS
SELECT constituency, candidate, COUNT(*) AS transactions, SUM(votes) AS votes
FROM (SELECT DISTINCT tx_hash, constituency, candidate, votes FROM transactions) AS t
GROUP BY constituency, candidate
"""
QUERY = "SELECT * FROM constituency_totals ORDER BY constituency, candidate"


def connect(url: str) -> Any:
    """A DB-API connection to the recipe's database (`sqlite:///…` or `postgresql://…`)."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"))
    import psycopg  # only for PostgreSQL

    return psycopg.connect(url)


def totals(url: str) -> list[tuple[int, str, int, int]]:
    """(constituency, candidate, transactions, votes), the view created first if missing;
    [] while no file has landed (no table yet)."""
    conn = connect(url)
    try:
        sqlite = isinstance(conn, sqlite3.Connection)
        if not _has_table(conn, sqlite):
            return []
        create = "CREATE VIEW IF NOT EXISTS" if sqlite else "CREATE OR REPLACE VIEW"
        conn.execute(VIEW.format(create=create))
        conn.commit()
        return [tuple(r) for r in conn.execute(QUERY).fetchall()]
    finally:
        conn.close()


def _has_table(conn: Any, sqlite: bool) -> bool:
    if sqlite:
        found = "SELECT 1 FROM sqlite_master WHERE name = 'transactions'"
        return conn.execute(found).fetchone() is not None
    return conn.execute("SELECT to_regclass('transactions')").fetchone()[0] is not None


def main() -> int:
    url = os.environ.get("ELECTIONS_DB")
    if not url:
        print("set ELECTIONS_DB (sqlite:///path.db or postgresql://…)", file=sys.stderr)
        return 2
    rows = totals(url)
    if not rows:
        print("no transactions yet")
        return 0
    print(f"{'constituency':>12}  {'candidate':<10} {'transactions':>12} {'votes':>10}")
    for constituency, candidate, n, votes in rows:
        print(f"{constituency:>12}  {candidate:<10} {n:>12} {votes:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
