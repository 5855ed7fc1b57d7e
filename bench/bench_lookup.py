"""`http_lookup` against a local API answering in 20 ms (the tests' API, in its own process).

    python -m bench.bench_lookup [--records 1000] [--delay-ms 20] [--rate 50] [--rounds 1]

Variants, each on a CSV of `--records` distinct IDs (so the per-file cache never answers):

  rate        concurrency 16, `rate_per_s` 50: the floor is records / rate (20 s for 1,000)
  shared      the same limit, two processes each taking half the records at once: the
              limit is shared, so the floor is the same 20 s (unshared it would be 10 s)
  sequential  no pipeline: one httpx client, one GET after another (the 10x baseline)
  concurrent  concurrency 16, no limit: target at least 10x the sequential loop

Seconds are the wall time of the work (interpreter start-up excluded), the variants
interleaved round by round. One table row per variant and round, then one JSON line per
variant (bench/report.py); the floors: the rate limit's ideal time for `rate` and `shared`,
records x delay for `sequential`, the sequential loop of the same round for `concurrent`.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import httpx

from bench.report import figure
from processors.loader import load
from tests.processors.lookup_api import Api, serve


def _api(delay_s: float, conn: Connection) -> None:
    with serve(Api(delay_s=delay_s)) as api:
        conn.send(api.url)
        conn.recv()  # until the bench says stop


def _csv(ids: range) -> bytes:
    return ("id\n" + "".join(f"{i}\n" for i in ids)).encode()


def _pipeline_seconds(url: str, ids: range, concurrency: int, rate: float | None) -> float:
    options: dict[str, Any] = {"url": url + "/item/{id}", "concurrency": concurrency}
    if rate is not None:
        options["rate_per_s"] = rate
    config = {
        "routes": [{"start": "ids", "reader": {"type": "csv", "header": True}}],
        "nodes": [{"name": "enrich", "tag": "ids", "use": "http_lookup", "options": options}],
    }
    pipeline = load(config).build()
    outputs: dict[str, io.StringIO] = {}
    started = time.perf_counter()
    summary = pipeline.run_file(
        io.BytesIO(_csv(ids)), "ids.csv", lambda s: outputs.setdefault(s, io.StringIO())
    )
    seconds = time.perf_counter() - started
    stats = summary["aggregates"]["enrich"]
    if summary["outputs"].get("out") != len(ids) or stats["failed"]:
        raise SystemExit(f"lookups failed: {stats}")
    return seconds


def _half(url: str, ids: range, rate: float, start_at: float, conn: Connection) -> None:
    time.sleep(max(start_at - time.monotonic(), 0))
    conn.send(_pipeline_seconds(url, ids, 16, rate))


def _shared(url: str, records: int, rate: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    half = records // 2
    start_at = time.monotonic() + 3.0  # both children imported and ready
    pipes, procs = [], []
    for ids in (range(half), range(half, records)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_half, args=(url, ids, rate, start_at, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    seconds = max(pipe.recv() for pipe in pipes)
    for proc in procs:
        proc.join()
    return seconds


def _sequential(url: str, ids: range) -> float:
    with httpx.Client() as client:
        started = time.perf_counter()
        for i in ids:
            client.get(f"{url}/item/{i}").raise_for_status()
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_api, args=(args.delay_ms / 1000, child), daemon=True)
    server.start()
    url = parent.recv()
    ids = range(args.records)
    floor = args.records / args.rate
    ideal = args.records * args.delay_ms / 1000  # one GET after another, no overhead
    runs: dict[str, list[float]] = {"rate": [], "shared": [], "sequential": [], "concurrent": []}
    print("| variant | round | seconds | floor | / floor |")
    print("|---|---|---|---|---|")
    try:
        for r in range(1, args.rounds + 1):
            runs["rate"].append(_pipeline_seconds(url, ids, 16, args.rate))
            runs["shared"].append(_shared(url, args.records, args.rate))
            runs["sequential"].append(_sequential(url, ids))
            runs["concurrent"].append(_pipeline_seconds(url, ids, 16, None))
            floors = {"rate": floor, "shared": floor, "sequential": ideal,
                      "concurrent": runs["sequential"][-1]}  # fmt: skip
            for variant, seconds in runs.items():
                f = floors[variant]
                print(f"| {variant} | {r} | {seconds[-1]:.2f} | {f:.2f} | {seconds[-1] / f:.2f} |",
                      flush=True)  # fmt: skip
    finally:
        parent.send("stop")
        server.join(timeout=10)
    n = args.rounds
    limit = f"rate_per_s {args.rate:g}"
    figure("lookup", f"rate, concurrency 16, {limit}; floor: records / rate", "s",
           runs["rate"], [floor] * n, records=args.records)  # fmt: skip
    figure("lookup", f"shared {limit} by 2 processes; floor: records / rate", "s",
           runs["shared"], [floor] * n, records=args.records)  # fmt: skip
    figure("lookup", f"sequential GETs; floor: records x {args.delay_ms:g} ms", "s",
           runs["sequential"], [ideal] * n, records=args.records)  # fmt: skip
    figure("lookup", "concurrent 16, no limit; floor: the sequential loop", "s",
           runs["concurrent"], runs["sequential"], records=args.records)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
