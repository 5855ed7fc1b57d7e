"""CSV route throughput: the engine's CSV reader into records, beside a bare csv.reader loop.

    python -m bench.bench_csv [--size-mb 200] [--rounds 5]

On a generated CSV (bench/out/, gitignored: id, timestamp, level, amount, country, note;
a quoted field with commas or quotes in about one row in four), each variant in its own
child process, interleaved over the rounds (`bench._rounds`), timed on the second of two
runs of the file (a worker's steady state; the first is in the JSON as `first_seconds`):

  floor     `for row in csv.reader(open(path, newline="")): n += 1`
  records   the engine: CSV reader -> csv_records (header -> field names), the records
            then counted and dropped (an aggregate node): the CSV route itself
  profile   the same plus the profile node (per-column facts into the summary)
  default   the repository's pipeline_config.json: records, profile, level counts, split
            by level, written as JSON lines to bench/out/
Target: records >= 50 % of floor.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench._rounds import OUT, ROOT, rate_row, rounds, rows_per_s
from bench.report import figure

RECORDS = {
    "routes": [{"start": "csv", "reader": {"type": "csv"}}],
    "nodes": [
        {"name": "rows", "tag": "csv", "use": "csv_records", "to": "rec",
         "options": {"invalid": "malformed"}},
        {"name": "drop", "tag": "rec", "use": "aggregate", "options": {"pass_lines": False}},
    ],
    "outputs": {"malformed": {}},
}  # fmt: skip
PROFILE = {
    **RECORDS,
    "nodes": [
        RECORDS["nodes"][0],
        {"name": "columns", "tag": "rec", "use": "profile", "to": "done"},
        {"name": "drop", "tag": "done", "use": "aggregate", "options": {"pass_lines": False}},
    ],
}
COUNTRIES = ["NO", "SE", "DK", "FI", "DE"]
NOTES = ["ok", "paid in full", "refund, partial", 'said "call me"', "n/a", "late"]


def generate(path: Path, size_mb: int) -> None:
    if path.exists() and path.stat().st_size >= size_mb << 20:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(12)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "timestamp", "level", "amount", "country", "note"])
        i = 0
        while f.tell() < size_mb << 20:
            rows = []
            for _ in range(10_000):
                i += 1
                ts = f"2026-11-22T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
                level = rng.choice(("INFO", "INFO", "INFO", "WARN", "ERROR"))
                amount = f"{rng.random() * 1000:.2f}"
                rows.append((i, ts, level, amount, rng.choice(COUNTRIES),
                             rng.choice(NOTES)))  # fmt: skip
            w.writerows(rows)
    tmp.rename(path)


def child(variant: str, path: Path) -> None:
    """Run `variant` on `path` twice and time both: the second run is the figure, as in
    the daemon, whose workers live from file to file with their heap already grown (a
    fresh process's first file also pays for growing it: `first_seconds`)."""
    results = OUT / "csv-results"
    results.mkdir(parents=True, exist_ok=True)
    if variant != "floor":
        from processors.loader import load

        raw = {"records": RECORDS, "profile": PROFILE}.get(variant)
        if raw is None:
            raw = json.loads((ROOT / "pipeline_config.json").read_text())
        pipeline = load(raw).build()
    opened: list[Any] = []

    def open_output(suffix: str, binary: bool = False) -> Any:
        opened.append((results / f"{path.name}.{suffix}").open("w", buffering=1 << 16))
        return opened[-1]

    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        if variant == "floor":
            n = 0
            with path.open(newline="", encoding="utf-8") as f:
                for _row in csv.reader(f):
                    n += 1
            rows = n - 1  # the header
        else:
            with path.open("rb") as stream:
                summary = pipeline.run_file(stream, path.name, open_output)
            for f in opened:
                f.close()
            opened.clear()
            rows = summary["lines_in"]
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds[1], "first_seconds": seconds[0], "rows": rows}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    path = OUT / f"sales_{args.size_mb}mb.csv"
    generate(path, args.size_mb)
    names = ("floor", "records", "profile", "default")
    runs = rounds("bench_csv", [(v, [str(path)]) for v in names], args.rounds)
    shutil.rmtree(OUT / "csv-results", ignore_errors=True)
    size = path.stat().st_size / 1e6
    table = [rate_row(v, runs[v], size) for v in names]
    print(f"\n{size:.0f} MB, {table[0]['rows']:,} rows; median of {args.rounds} rounds (min-max)")
    print("| variant | MB/s | rows/s | peak RSS | of floor |")
    print("|---|---|---|---|---|")
    floor = table[0]["rows_s"]
    for r in table:
        spread = f"{r['mb_s']:.1f} ({r['mb_s_min']:.1f}-{r['mb_s_max']:.1f})"
        share = r["rows_s"] / floor
        print(f"| {r['variant']} | {spread} | {r['rows_s']:,.0f} | {r['peak_rss_mb']:.0f} MB | "
              f"{share:.0%} |")  # fmt: skip
    print(f"\nrecords / floor = {table[1]['rows_s'] / floor:.0%} (target >= 50%)\n")
    for r in table[1:]:
        figure("csv", f"{r['variant']} route, {size:.0f} MB CSV vs bare csv.reader", "rows/s",
               rows_per_s(runs[r["variant"]]), rows_per_s(runs["floor"]),
               mb_s=round(r["mb_s"], 1), peak_rss_mb=round(r["peak_rss_mb"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
