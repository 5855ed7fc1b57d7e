"""Excel throughput and memory: reading a workbook through folderd beside calamine's own
loop, writing one through the xlsx output beside a bare xlsxwriter loop.

    python -m bench.bench_excel [--rows 100000] [--rounds 5] [--rss-mb 50]

On a generated workbook (bench/out/, gitignored: id, name, ward, score, joined (a date),
active; one sheet), each variant in its own child process, interleaved over the rounds
(`bench._rounds`):

  read floor    calamine: CalamineWorkbook.from_path, get_sheet_by_name, iter_rows
  read          the engine: the Excel reader (typed records, sheet and row fields), the
                records counted and dropped (an aggregate node)
  write floor   xlsxwriter in constant_memory mode: write_row for each of the same rows
  write         the xlsx output (`processors.workbook.Workbook`): the same records as
                dicts, typed cells, header, frozen panes, autofilter
With --rss-mb N, the read variants also run once on a workbook of about N MB, for their
peak RSS (calamine holds the whole file and a whole sheet in memory).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._rounds import OUT, measure, rate_row, rounds, rows_per_s
from bench.report import figure

SHEET_ROWS = 1_000_000
ROWS_PER_MB = 29_000
FIELDS = ["id", "name", "ward", "score", "joined", "active"]
READ = {
    "routes": [{"start": "rows", "reader": {"type": "excel"}}],
    "nodes": [
        {"name": "drop", "tag": "rows", "use": "aggregate", "options": {"pass_lines": False}}
    ],
}
NAMES = ["Ada", "Bob", "Cy", "Di", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon"]


def rows(n: int) -> list[list[Any]]:
    rng = random.Random(7)
    day = dt.date(2020, 1, 1)
    return [
        [i, f"{rng.choice(NAMES)} {rng.randrange(10_000)}", rng.randrange(1, 40),
         round(rng.random() * 100, 2), day + dt.timedelta(days=i % 2000), i % 3 == 0]
        for i in range(1, n + 1)
    ]  # fmt: skip


def write_bare(path: Path, data: list[list[Any]]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    dates = wb.add_format({"num_format": "yyyy-mm-dd"})
    for first in range(0, len(data), SHEET_ROWS):  # a big workbook: several sheets
        ws = wb.add_worksheet(f"data{first // SHEET_ROWS + 1}")
        ws.write_row(0, 0, FIELDS)
        ws.set_column(4, 4, None, dates)
        for r, row in enumerate(data[first : first + SHEET_ROWS], 1):
            ws.write_row(r, 0, row)
    wb.close()


def generate(path: Path, n: int) -> None:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bare(path.with_suffix(".tmp.xlsx"), rows(n))
        path.with_suffix(".tmp.xlsx").rename(path)


def child(variant: str, path: Path, n: int) -> None:
    if variant.startswith("write"):
        data = rows(n)
        records = [dict(zip(FIELDS, row, strict=True)) for row in data]
        for rec in records:
            rec["joined"] = rec["joined"].isoformat()  # as the Excel reader gives dates
        out = OUT / f"written-{variant.replace(' ', '-')}.xlsx"
    elif variant == "read":
        from processors.loader import load

        pipeline = load(READ).build()
    started = time.perf_counter()
    if variant == "read floor":
        import python_calamine

        book = python_calamine.CalamineWorkbook.from_path(str(path))
        count = 0
        for name in book.sheet_names:
            for _row in book.get_sheet_by_name(name).iter_rows():
                count += 1
            count -= 1  # its header row
    elif variant == "read":
        with path.open("rb") as stream:
            count = pipeline.run_file(stream, path.name, lambda *_a, **_k: None)["lines_in"]
    elif variant == "write floor":
        write_bare(out, data)
        count = len(data)
    else:
        from processors.workbook import Workbook

        with out.open("wb") as stream:
            book = Workbook(stream, summary=False)
            book.add("data", records)
            book.close({})
        count = len(records)
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": count}))


def big_workbook(size_mb: int) -> Path:
    """A workbook of about `size_mb` MB (rows of the same shape, ~35 bytes each zipped)."""
    path = OUT / f"people_{size_mb}mb.xlsx"
    generate(path, size_mb * ROWS_PER_MB)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-mb", type=int, default=0, help="also read a workbook this big")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "FILE", "N"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), int(args.child[2]))
        return 0
    path = OUT / f"people_{args.rows}.xlsx"
    generate(path, args.rows)
    names = ("read floor", "read", "write floor", "write")
    variants = [(v, [str(path), str(args.rows)]) for v in names]
    runs = rounds("bench_excel", variants, args.rounds)
    table = [rate_row(v, runs[v], None) for v in names]
    size = path.stat().st_size / 1e6
    print(f"\n{args.rows:,} rows x {len(FIELDS)} columns ({size:.1f} MB workbook); "
          f"median of {args.rounds} rounds (min-max)")  # fmt: skip
    print("| variant | rows/s | peak RSS | of its floor |")
    print("|---|---|---|---|")
    for i, r in enumerate(table):
        floor = table[i - i % 2]["rows_s"]
        spread = f"{r['rows_s']:,.0f} ({r['rows_s_min']:,.0f}-{r['rows_s_max']:,.0f})"
        share = r["rows_s"] / floor
        print(f"| {r['variant']} | {spread} | {r['peak_rss_mb']:.0f} MB | {share:.0%} |")
    print()
    for op in ("read", "write"):
        library = "calamine" if op == "read" else "xlsxwriter"
        rss = statistics.median(r["peak_rss_mb"] for r in runs[op])
        workload = f"{op} {args.rows:,} rows vs a bare {library} loop"
        figure("excel", workload, "rows/s", rows_per_s(runs[op]),
               rows_per_s(runs[f"{op} floor"]), peak_rss_mb=round(rss))  # fmt: skip
    if args.rss_mb:
        big = big_workbook(args.rss_mb)
        n = str(args.rss_mb * ROWS_PER_MB)
        for variant in ("read floor", "read"):
            info = measure("bench_excel", variant, [str(big), n])
            print(f"{variant} on {big.stat().st_size / 1e6:.0f} MB ({info['rows']:,} rows): "
                  f"{info['seconds']:.1f} s, peak RSS {info['peak_rss_mb']:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
