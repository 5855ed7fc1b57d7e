"""Peak RSS of a worker's pipeline for each reader, and for the inputs that expand.

    python -m bench.bench_limits [--rounds 3] [--only NAME ...]

Each file (generated once into bench/out/, gitignored) runs through the default
`pipeline_config.json` (`Pipeline.run_file`, as a worker runs it) in its own child
process; the child's peak RSS comes from `wait4`. Medians of the rounds (min-max).

  log, csv, jsonl, log.gz   50 MB of each (the gzip: of the log)
  xlsx                      the 10 MB workbook of bench_excel (290,000 rows)
  xls, ods                  20,000 and 5,000 rows of the same shape
  far.xlsx                  cells A1 and ZZ1000000 (1.5 KB)
  long.xlsx                 one shared string of 1.5 GB (1.5 MB)
  many.xlsx                 20 million one-letter shared strings (~800 KB)
  wide.csv                  20,000 columns x 300 rows (~52 MB)
  header.csv                a 100,000-column header over one row
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._rounds import OUT, ROOT, measure

LOG = b"2026-11-22 10:00:00 [INFO] API: request served in 12 ms\n"
MB = 1 << 20


def _files() -> dict[str, Path]:
    return {name: OUT / f"limits_{name}" for name in (
        "log", "csv", "jsonl", "log.gz", "xlsx", "xls", "ods", "far.xlsx", "long.xlsx",
        "many.xlsx", "wide.csv", "header.csv")}  # fmt: skip


def generate(name: str, path: Path) -> None:
    from tests.processors import workbooks

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp_" + path.name)
    n = 50 * MB
    if name == "log":
        tmp.write_bytes(LOG * (n // len(LOG)))
    elif name == "csv":
        row = b"2026-11-22 10:00:00,INFO,API,request served in 12 ms\n"
        tmp.write_bytes(b"timestamp,level,component,message\n" + row * (n // len(row)))
    elif name == "jsonl":
        row = b'{"ts":"2026-11-22 10:00:00","level":"INFO","component":"API","msg":"ok"}\n'
        tmp.write_bytes(row * (n // len(row)))
    elif name == "log.gz":
        tmp.write_bytes(gzip.compress(LOG * (n // len(LOG)), 6))
    elif name in ("xlsx", "xls", "ods"):
        from bench.bench_excel import big_workbook, rows

        if name == "xlsx":
            tmp.write_bytes(big_workbook(10).read_bytes())
        elif name == "xls":
            data = rows(20_000)
            workbooks.xls(tmp, {"data": [["id", "name", "ward", "score", "joined", "active"],
                                         *data]})  # fmt: skip
        else:
            workbooks.ods(tmp, [["id", "name", "ward", "score"]] +
                          [r[:4] for r in rows(5_000)])  # fmt: skip
    elif name == "far.xlsx":
        workbooks.far_cell(tmp)
    elif name == "long.xlsx":
        workbooks.long_shared_string(tmp, 1536)
    elif name == "many.xlsx":
        workbooks.many_shared_strings(tmp, 20_000_000)
    elif name == "wide.csv":
        header = ",".join(f"c{i}" for i in range(20_000)).encode() + b"\n"
        row = ",".join(str(i % 1000) for i in range(20_000)).encode() + b"\n"
        tmp.write_bytes(header + row * 300)
    elif name == "header.csv":
        header = ",".join(f"column{i}" for i in range(100_000)).encode() + b"\n"
        tmp.write_bytes(header + b",".join(b"1" for _ in range(100_000)) + b"\n")
    tmp.rename(path)


def child(path: Path) -> None:
    from processors.base import ProcessorError
    from processors.loader import load

    config = json.loads((ROOT / "pipeline_config.json").read_text())
    pipeline = load(config).build()
    started = time.perf_counter()
    outcome, size = "processed", 0
    with path.open("rb") as stream:
        try:
            summary = pipeline.run_file(stream, path.name, lambda *_a, **_k: _Null())
            size = len(json.dumps(summary))
        except ProcessorError as exc:
            outcome = f"{exc.error_type}"
    print(json.dumps({"seconds": time.perf_counter() - started, "outcome": outcome,
                      "summary_bytes": size}))  # fmt: skip


class _Null:
    def write(self, data: object) -> int:
        return 0

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[1]))
        return 0
    if args.generate:
        generate(args.generate[0], Path(args.generate[1]))
        return 0
    # parent's (wait4 reports the larger): files are made in a child of their own
    files = {k: v for k, v in _files().items() if not args.only or k in args.only}
    for name, path in files.items():  # in a child: a forked child's peak RSS counts its
        subprocess.run([sys.executable, "-m", "bench.bench_limits", "--generate", name,
                        str(path)], cwd=ROOT, check=True)  # fmt: skip
    print("| input | file | outcome | summary | peak RSS, MB | seconds |")
    print("|---|---|---|---|---|---|")
    for name, path in files.items():
        runs = [measure("bench_limits", name, [str(path)]) for _ in range(args.rounds)]
        rss = [r["peak_rss_mb"] for r in runs]
        secs = [r["seconds"] for r in runs]
        print(f"| {name} | {_size(path.stat().st_size)} | {runs[0]['outcome']} | "
              f"{_size(runs[0]['summary_bytes'])} | {statistics.median(rss):.0f} "
              f"({min(rss):.0f}-{max(rss):.0f}) | {statistics.median(secs):.2f} |",
              flush=True)  # fmt: skip
    return 0


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.1f} KB"


if __name__ == "__main__":
    sys.exit(main())
