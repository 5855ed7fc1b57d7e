"""Sink throughput beside its floors, on real servers started for the run.

    python -m bench.bench_sinks [--records 1000000] [--s3-mb 200] [--repeat 3]

  postgresql  N JSON records (4 typed columns) through folderd — what `main.py --input`
              runs: the pipeline, the temp output, the sink's COPY in one transaction — vs `psql
              \\copy` of the same rows from a CSV file (the floor), once into a table like
              the sink's with its index on `uid` (which the sink needs to replace a file's
              rows) and once into a bare table with no index
  sqlite      the same records through folderd vs a bare `executemany` in one transaction
              (reading and parsing the same JSON lines: the floor does the same work), into
              a table with the sink's `uid` index and into a bare one
  s3          an M MB input delivered by folderd (`deliver`) vs boto3's `upload_file` of
              the same file to the same server (the floor: no checksum); folderd as the
              mirror recipe (reader `none`: hashed, not read as lines) with CRC32 checksums
              (the default) and with Content-MD5s, and after a pipeline that reads every
              line (a filter that drops them all)

folderd's figure is the file's `duration_s` from its summary (whole attempt, interpreter
start-up excluded), its `sink` figure the delivery's own `seconds`, both in a worker that
has delivered a file before (as a daemon's worker from its second file on: the client
library imported, the connection open — the warm-up's delivery time is shown too; 16 KiB
for the SQL sinks, a two-part multipart upload for S3); peak RSS is the child process's
(wait4). Medians of `--repeat` rounds, the spread of the ratios beside them, and one JSON
line per workload. The servers are the tests'
(`tests/sinks/servers.py`): PostgreSQL runs with fsync=off, SeaweedFS on the same disk;
both on this machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.report import figure
from sinks.s3 import PART
from tests.sinks.servers import PG_PASSWORD, Postgres, SeaweedS3, ServerMissing

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "sinks"
COLUMNS = {"ts": "timestamp", "level": "text", "component": "text", "message": "text"}
LEVELS = ("INFO", "DEBUG", "WARN", "ERROR")
COMPONENTS = ("API", "DB", "Auth", "Cache")


def records(path: Path, n: int) -> None:
    with path.open("wb") as f:
        for i in range(n):
            rec = {"ts": f"2026-11-22 10:{i // 60 % 60:02d}:{i % 60:02d}",
                   "level": LEVELS[i % 4], "component": COMPONENTS[i % 3],
                   "message": f"request {i} handled in {i % 997} ms"}  # fmt: skip
            f.write(orjson.dumps(rec) + b"\n")


def folderd(
    config: dict[str, Any], path: Path, env: dict[str, str], warm_up: int = 1 << 14
) -> dict[str, Any]:
    """`path` through folderd with `config`, in a worker that has delivered before: one
    process runs a warm-up file (`warm_up` bytes of `path`'s lines) and then `path`
    (`daemon.oneoff.single.run_single`, what `main.py --input` runs), so the sink's client
    library is imported and its connection open, as in a daemon's worker from its second
    file on. `path`'s summary, with the warm-up's delivery seconds (a worker's first file:
    import and connect) and the child's peak RSS."""
    cfg = OUT / "pipeline.json"
    cfg.write_text(json.dumps(config))
    results = OUT / "results"
    shutil.rmtree(results, ignore_errors=True)
    cmd = [sys.executable, "-c", _PEAK_RSS, sys.executable, "-c", _WORKER, str(cfg), str(results),
           str(_warm_up(path, warm_up)), str(path)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, env={**os.environ, **env})
    out, _, peak = done.stdout.rpartition(b"\npeak_rss_kb=")
    warm_up, summary = json.loads(out[out.rfind(b"\n[{") :])  # after the log lines
    for s in (warm_up, summary):
        if s["status"] != "processed":
            raise RuntimeError(f"folderd failed: {s.get('error')}\n{done.stderr.decode()}")
    summary["first_delivery_s"] = warm_up["deliveries"][0]["seconds"]
    summary["peak_rss_mb"] = int(peak) / 1024
    return summary


def _warm_up(path: Path, size: int) -> Path:
    """A file of the same kind as `path`: its first lines, about `size` bytes."""
    small = path.with_name(f"warm-up{path.suffix}")
    with path.open("rb") as f:
        small.write_bytes(f.read(size).rpartition(b"\n")[0] + b"\n")
    return small


_WORKER = """import json, sys
from pathlib import Path
from daemon.oneoff.single import run_single
from processors import load_file
pipeline = load_file(Path(sys.argv[1]))
done = [run_single(Path(p), Path(sys.argv[2]), pipeline, fsync=True, trace=False)
        for p in sys.argv[3:]]
print("\\n" + json.dumps([s.to_json() for s in done]), flush=True)
"""
# Runs folderd from a small process and prints its peak RSS: a child forked straight from
# this (by then large) process would inherit the parent's high-water mark across exec.
_PEAK_RSS = """import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(f"\\npeak_rss_kb={usage.ru_maxrss}", flush=True)
"""


def bench_postgres(path: Path, n: int, repeat: int) -> list[str]:
    pg = Postgres()
    pg.start()
    try:
        url = f"postgresql://folderd:${{PGPW}}@127.0.0.1:{pg.port}/postgres"
        sink = {"type": "sql", "url": url, "table": "records", "columns": COLUMNS}
        config = {"routes": [{"start": "rows"}], "outputs": {"rows": {"sink": sink}}}
        csv_path = OUT / "records.csv"
        with path.open("rb") as src, csv_path.open("w", newline="") as dst:
            w = csv.writer(dst)
            for i, line in enumerate(src, 1):
                r = orjson.loads(line)
                w.writerow(["uid", path.name, i, r["ts"], r["level"], r["component"], r["message"]])
        bare, same = _Times(), _Times()
        for _ in range(repeat):
            pg.query("DROP TABLE IF EXISTS records")
            s = folderd(config, path, {"PGPW": PG_PASSWORD})
            assert pg.query(f"SELECT count(*) FROM records WHERE source = '{path.name}'") == [(n,)]
            bare.ran(s)
            same.ran(s)
            for times, like in ((bare, "records"), (same, "records INCLUDING INDEXES")):
                pg.query("DROP TABLE IF EXISTS floor")
                pg.query(f"CREATE TABLE floor (LIKE {like})")
                started = time.perf_counter()
                copy = f"\\copy floor FROM '{csv_path}' WITH (FORMAT csv)"
                psql = ["psql", url.replace("${PGPW}", PG_PASSWORD), "-qc", copy]
                subprocess.run(psql, check=True)
                times.floor.append(time.perf_counter() - started)
                assert pg.query("SELECT count(*) FROM floor") == [(n,)]
    finally:
        pg.close()
    return [same.row("PostgreSQL (floor: the same table, uid index)", "records/s", n),
            bare.row("PostgreSQL (floor: a bare table)", "records/s", n)]  # fmt: skip


def bench_sqlite(path: Path, n: int, repeat: int) -> list[str]:
    db = OUT / "bench.sqlite3"
    sink = {"type": "sql", "url": f"sqlite:///{db}", "table": "records", "columns": COLUMNS}
    config = {"routes": [{"start": "rows"}], "outputs": {"rows": {"sink": sink}}}
    bare, same = _Times(), _Times()
    for _ in range(repeat):
        for p in OUT.glob("bench.sqlite3*"):
            p.unlink()
        s = folderd(config, path, {})
        bare.ran(s)
        same.ran(s)
        for times, index in ((bare, False), (same, True)):
            for p in OUT.glob("bench.sqlite3*"):
                p.unlink()
            times.floor.append(_sqlite_floor(db, path, index))
    return [same.row("SQLite (floor: the same table, uid index)", "records/s", n),
            bare.row("SQLite (floor: a bare table)", "records/s", n)]  # fmt: skip


def _sqlite_floor(db: Path, path: Path, index: bool) -> float:
    started = time.perf_counter()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE floor (uid TEXT, source TEXT, line INTEGER, ts TEXT, level TEXT, "
                "component TEXT, message TEXT)")  # fmt: skip
    if index:  # as the sink creates its table: the uid index it replaces a file's rows by
        con.execute('CREATE INDEX "floor_uid" ON floor ("uid")')
    con.execute("BEGIN")
    with path.open("rb") as f:
        rows = (("uid", path.name, i, r["ts"], r["level"], r["component"], r["message"])
                for i, r in enumerate(map(orjson.loads, f), 1))  # fmt: skip
        con.executemany("INSERT INTO floor VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - started


def bench_s3(mb: int, repeat: int) -> list[str]:
    server = SeaweedS3(OUT)
    server.start()
    try:
        path = OUT / "input.log"
        line = b"x" * 1023 + b"\n"
        with path.open("wb") as f:
            for _ in range(mb << 10):
                f.write(line)
        s3 = server.client()
        server.bucket("bench-folderd")
        server.bucket("bench-floor")
        sink = {"type": "s3", "bucket": "bench-folderd", "endpoint_url": server.url}
        md5 = {**sink, "request_checksum_calculation": "when_required"}
        drop_all = {"tag": "in", "use": "filter", "to": "end", "options": {"include": "^never$"}}
        variants = {  # the first two as the Folder -> S3 mirror recipe: hashed, not read
            "a mirror: reader none, CRC32": {"reader": {"type": "none"}, "deliver": [sink]},
            "a mirror, Content-MD5 (when_required)": {"reader": {"type": "none"},
                                                      "deliver": [md5]},
            "after a pipeline that reads every line": {"routes": [{"start": "in"}],
                                                       "nodes": [drop_all], "deliver": [sink]},
        }  # fmt: skip
        times = {name: _Times() for name in variants}
        for _ in range(repeat):
            for name, config in variants.items():
                # warmed up by a multipart upload (two parts), as a mirror's worker is
                times[name].ran(folderd(config, path, server.env, PART + (1 << 20)))
            started = time.perf_counter()
            s3.upload_file(str(path), "bench-floor", "input.log")
            for t in times.values():
                t.floor.append(time.perf_counter() - started)
    finally:
        server.stop()
    return [t.row(f"S3 ({name})", "MB/s", mb) for name, t in times.items()]


class _Times:
    """Seconds per round: the floor's, folderd's whole file, its delivery alone."""

    def __init__(self) -> None:
        self.floor: list[float] = []
        self.whole: list[float] = []
        self.sink: list[float] = []
        self.first: list[float] = []  # a worker's first delivery: the warm-up file's
        self.rss = 0.0

    def ran(self, summary: dict[str, Any]) -> None:
        self.whole.append(summary["duration_s"])
        self.sink.append(summary["deliveries"][0]["seconds"])
        self.first.append(summary["first_delivery_s"])
        self.rss = max(self.rss, summary["peak_rss_mb"])

    def row(self, sink: str, unit: str, amount: int) -> str:
        """Medians of the rates, each beside the floor's rate (spread of the ratios in
        brackets), and the JSON line."""

        def rates(times: list[float]) -> list[float]:
            return [amount / x for x in times]

        floor = rates(self.floor)
        whole = figure("sinks", f"{sink}, whole file", unit, rates(self.whole), floor,
                       peak_rss_mb=round(self.rss))  # fmt: skip
        alone = figure("sinks", f"{sink}, the delivery alone", unit, rates(self.sink), floor)

        def cell(f: dict[str, Any]) -> str:
            lo, hi = f["spread"]
            return f"{f['value']:,.0f} (**{f['ratio']:.0%}**, {lo:.0%}–{hi:.0%})"

        first = statistics.median(self.first)
        return (f"| {sink}, {unit} | {statistics.median(floor):,.0f} | {cell(whole)} | "
                f"{cell(alone)} | {first:.2f} s | {self.rss:.0f} MB |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--s3-mb", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", choices=["postgresql", "sqlite", "s3"], action="append",
                   help="run only these (repeatable); all three by default")  # fmt: skip
    args = p.parse_args(argv)
    only = set(args.only or ["postgresql", "sqlite", "s3"])
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; medians of "
          f"{args.repeat} rounds")  # fmt: skip
    print("| sink | floor | folderd, whole file | folderd, the delivery alone | "
          "a worker's first delivery (warm-up file) | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    try:
        path = OUT / "records.jsonl"
        records(path, args.records)
        rows = [*(bench_postgres(path, args.records, args.repeat) if "postgresql" in only else []),
                *(bench_sqlite(path, args.records, args.repeat) if "sqlite" in only else []),
                *(bench_s3(args.s3_mb, args.repeat) if "s3" in only else [])]  # fmt: skip
        for row in rows:
            print(row, flush=True)
    except ServerMissing as exc:
        print(f"skipped: {exc} is not installed")
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
