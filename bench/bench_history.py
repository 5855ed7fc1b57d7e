"""How fast is the History page on a journal of 1,000,000 files?

    python -m bench.bench_history [--rows 1000000] [--rounds 5] [--no-naive]

Builds a journal of `--rows` files that finished over the last 7 days (5% failed; four
routes, and files that failed before taking one) with the daemon's own schema and indexes
(`daemon.journal.Journal`), under bench/out/history/, then times on a read-only connection,
as the dashboard reads:

  hour / day / week   `History.counts` with a fresh cache: every bucket counted
  week, refreshed     the same with the cache of the round before: the open bucket only
  Files in a range    one page of 50 files of one half-hour, all states, then only failed
  naive week          the one GROUP BY the index replaces (every row of the week read
                      through `files_state_updated`): the floor the figures compare with

Medians of `--rounds` rounds with min-max; one JSON line per workload (bench/report.py).
Results also go to bench/out/history.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.report import figure
from daemon.journal import Journal
from dashboard import history, queries

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "history"
ROUTES = ("log", "csv", "json", "table")
WEEK = 7 * 86400


def build(path: Path, rows: int, now: float) -> float:
    """The journal, with `rows` files updated uniformly over the week before `now`."""
    Journal(path).close()  # the schema, its migrations and indexes, as the daemon makes them
    rnd = random.Random(31)

    def files() -> Iterator[tuple[Any, ...]]:
        for i in range(rows):
            t = now - rnd.random() * WEEK
            failed = rnd.random() < 0.05
            route = None if failed and rnd.random() < 0.3 else ROUTES[i % len(ROUTES)]
            yield (f"{i:032x}", f"host{i % 50}/file_{i}.log", f"file_{i}.log",
                   "failed" if failed else "processed", 1000 + i % 5000, 1, t - 2, t, t - 1,
                   t, 0.8, 20, 20, route)  # fmt: skip

    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO files (uid, rel, original, state, size, attempts, created, updated,"
        " started, finished, duration, lines_in, lines_out, route)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        files(),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - t0


def naive_week(conn: sqlite3.Connection, now: float) -> None:
    since = now - WEEK
    conn.execute(
        "SELECT CAST((updated - ?) / 10800 AS INTEGER) AS b, state, route, COUNT(*)"
        " FROM files INDEXED BY files_state_updated"
        " WHERE state IN ('processed', 'failed') AND updated >= ? GROUP BY b, state, route",
        (since, since),
    ).fetchall()


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _ms(values: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(values), 2),
        "min_ms": round(min(values), 2),
        "max_ms": round(max(values), 2),
        "rounds_ms": [round(v, 2) for v in values],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="skip the slow GROUP BY floor")
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    path = OUT / "journal.sqlite3"
    now = time.time()
    built = build(path, args.rows, now)
    print(f"built a journal of {args.rows:,} files in {built:.1f} s "
          f"({path.stat().st_size / 2**20:.0f} MiB)")  # fmt: skip
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    keys = ("hour", "day", "week", "week_refreshed", "files_range", "files_range_failed", "naive")
    runs: dict[str, list[float]] = {k: [] for k in keys}
    warm = history.History()
    warm.counts(conn, 0, history.PERIODS["week"], now)
    for i in range(args.rounds):
        for name in ("hour", "day", "week"):
            period = history.PERIODS[name]
            runs[name].append(timed(lambda p=period: history.History().counts(conn, 0, p, now)))
        later = now + (i + 1) * 5  # a refresh a few seconds on
        runs["week_refreshed"].append(
            timed(lambda t=later: warm.counts(conn, 0, history.PERIODS["week"], t))
        )
        lo = now - 86400 - 1800 * (i + 1)
        runs["files_range"].append(
            timed(lambda lo=lo: queries.list_files(conn, since=lo, until=lo + 1800))
        )
        runs["files_range_failed"].append(
            timed(lambda lo=lo: queries.list_files(conn, state="failed", since=lo, until=lo + 1800))
        )
        if not args.no_naive:
            runs["naive"].append(timed(lambda: naive_week(conn, now)))
        print(f"round {i + 1}/{args.rounds}: week {runs['week'][-1]:.0f} ms, refreshed "
              f"{runs['week_refreshed'][-1]:.1f} ms", file=sys.stderr, flush=True)  # fmt: skip
    conn.close()
    result = {"rows": args.rows, "build_s": round(built, 1),
              **{k: _ms(v) for k, v in runs.items() if v}}  # fmt: skip
    labels = {
        "hour": "last hour, 60 buckets", "day": "last day, 48 buckets",
        "week": "last week, 56 buckets", "week_refreshed": "last week, refreshed (open bucket)",
        "files_range": "Files page, a half-hour range", "files_range_failed":
        "Files page, failed in a half-hour range", "naive": "naive GROUP BY of the week",
    }  # fmt: skip
    for key, label in labels.items():
        if key in result:
            m = result[key]
            print(f"{label:<42} {m['median_ms']:>9.2f} ms  ({m['min_ms']:.2f}–{m['max_ms']:.2f})")
    floor = runs["naive"]
    for key in ("hour", "day", "week", "week_refreshed"):
        figure("history", f"{labels[key]}, {args.rows:,} files" + ("; floor: naive GROUP BY"
               if floor else ""), "ms", runs[key], floor)  # fmt: skip
    for key in ("files_range", "files_range_failed"):
        figure("history", f"{labels[key]}, {args.rows:,} files", "ms", runs[key], [])
    (OUT.parent / "history.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
