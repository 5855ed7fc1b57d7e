"""What the live pipeline graph costs: the worker's progress reports, and the dashboard's
once-a-second rates.

    python -m bench.bench_live_graph [--size-mb 40] [--rounds 5]

worker     a generated log of --size-mb through the repository's pipeline_config.json by
           `daemon.worker.process_file`, with the progress reports a worker sends (each
           calls `Pipeline.live()` and pickles the message, as the pipe does) beside the
           floor: the same file with no progress callback. Also the time of one report.
dashboard  one second of events for a 20-node config (2 workers reporting twice a second,
           4 small files finishing) through `Stats.apply`, then `graph.live` on the rates:
           beside the floor, the same events without their counts (what the dashboard did
           before the graph was live).

Medians of --rounds rounds with min-max spread, and one JSON line per workload
(bench/report.py) with its floor from the same rounds. The machine is shared and noisy: compare
figures of one run, not across runs.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.report import figure
from daemon.attempt import Job, Progress
from daemon.worker import process_file
from dashboard import graph
from dashboard.stats import Stats
from processors import Pipeline
from processors.loader import load, load_file

ROOT = Path(__file__).resolve().parent.parent
LINES = [
    "2024-01-05 10:00:01 [INFO] API: request handled in 5 ms\n",
    "2024-01-05 10:00:02 [ERROR] DB: connection lost\n",
    "2024-01-05 10:00:03 [WARN] Cache: miss for key session:42\n",
    "not a log line at all\n",
]


def _spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    v = [x * scale for x in values]
    return f"{statistics.median(v):.3f} {unit} (min {min(v):.3f}, max {max(v):.3f})"


def _worker_round(
    pipeline: Pipeline, src: Path, tmp: Path, report: bool
) -> tuple[float, list[float]]:
    job = Job("0" * 32, "bench_20240105.log", "bench_20240105.log", str(src), 1, str(tmp),
              fsync=False, size=src.stat().st_size)  # fmt: skip
    costs: list[float] = []

    def progress(n: int) -> None:
        t = time.perf_counter()
        pickle.dumps(Progress(job.uid, n, pipeline.live()))
        costs.append(time.perf_counter() - t)

    started = time.perf_counter()
    outcome = process_file(job, pipeline, progress if report else None)
    elapsed = time.perf_counter() - started
    for p in tmp.iterdir():
        p.unlink()
    if outcome.summary is None or not outcome.summary.ok:
        raise SystemExit(f"the bench file failed: {outcome.summary}")
    return elapsed, costs


def bench_worker(size_mb: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        src, tmp = base / "bench_20240105.log", base / "tmp"
        tmp.mkdir()
        block = "".join(LINES) * 1000
        with src.open("w") as f:
            for _ in range(size_mb * (1 << 20) // len(block)):
                f.write(block)
        pipeline = load_file(ROOT / "pipeline_config.json").build()
        floor, live, costs = [], [], []
        for r in range(rounds):  # alternating which goes first
            for report in (r % 2 == 0, r % 2 == 1):
                elapsed, c = _worker_round(pipeline, src, tmp, report)
                (live if report else floor).append(elapsed)
                costs += c
    print(f"worker, {size_mb} MB through the default pipeline:")
    print(f"  floor (no progress reports)  {_spread(floor, 's')}")
    print(f"  with live progress reports   {_spread(live, 's')}")
    if costs:  # none on a file the worker reads before its first report is due
        print(f"  one report (live() + pickle) {_spread(costs, 'µs', 1e6)}, {len(costs)} reports")
    report_us = round(statistics.median(costs) * 1e6, 3) if costs else None
    figure("live_graph", f"worker, {size_mb} MB, progress reports; floor: no progress callback",
           "s", live, floor, report_us=report_us, reports=len(costs))  # fmt: skip


def _twenty_nodes() -> Any:
    nodes: list[dict[str, Any]] = [{"name": "fan", "tag": "in", "use": "pass",
                                    "to": ["a0", "b0", "c0", "d0"]}]  # fmt: skip
    for b in "abcd":
        for i in range(4):
            to = f"{b}{i + 1}" if i < 3 else "merged"
            nodes.append({"name": f"{b}{i}", "tag": f"{b}{i}", "use": "strip", "to": to})
    nodes += [
        {"name": "merge", "tag": "merged", "use": "pass", "to": "counted"},
        {"name": "count", "tag": "counted", "use": "count", "to": "rows"},
        {"name": "keep", "tag": "rows", "use": "pass", "to": "end"},
    ]
    return load({"routes": [{"start": "in"}], "nodes": nodes, "outputs": {"end": {}}})


def _events(names: list[str], tags: list[str], second: int, counts: bool) -> list[dict]:
    def stats(n: int) -> dict[str, Any]:
        return {
            "tags": {t: n for t in tags} if counts else None,
            "processors": {p: {"lines_in": n, "lines_out": n, "errors": 0, "seconds": n / 1e5}
                           for p in names} if counts else None,
        }  # fmt: skip

    evs: list[dict] = []
    for w in range(2):
        for half in range(2):
            n = (second * 2 + half + 1) * 50_000
            evs.append({"kind": "file_progress", "ts": second + half / 2,
                        "mono": second + half / 2, "uid": f"big{w}",
                        "path": f"big{w}.log", "bytes": n, **stats(n)})  # fmt: skip
    for i in range(4):
        uid = f"small{second}-{i}"
        evs.append({"kind": "file_started", "ts": second, "mono": second, "uid": uid,
                    "path": f"{uid}.log"})  # fmt: skip
        evs.append({"kind": "file_processed", "ts": second + 0.9, "mono": second + 0.9,
                    "uid": uid, "path": uid, "duration_s": 0.01, "size": 100,
                    **stats(100)})  # fmt: skip
    return evs


def _tick(stats: Stats, events: list[dict], g: graph.Graph, live: bool) -> float:
    t = time.perf_counter()
    stats.apply(events)
    if live:
        graph.live(g, stats.rates.per_second(events[-1]["mono"]), stats.rates.errors)
    return time.perf_counter() - t


def bench_dashboard(rounds: int) -> None:
    g = graph.build(_twenty_nodes())
    names = [n.label for n in g.nodes if n.kind == "processor"]
    tags = [n.label for n in g.nodes if n.kind != "processor"]
    floor, live = [], []
    for _ in range(rounds):
        for with_counts, out in ((False, floor), (True, live)):
            stats = Stats(CollectorRegistry())
            ticks = [_tick(stats, _events(names, tags, s, with_counts), g, with_counts)
                     for s in range(1, 61)]  # fmt: skip
            out.append(statistics.median(ticks))
    print(f"dashboard, one second of events, 20-node config ({len(names)} processors):")
    print(f"  floor (events without counts) {_spread(floor, 'µs', 1e6)}")
    print(f"  with live rates               {_spread(live, 'µs', 1e6)}")
    figure("live_graph", "dashboard, one second of events, live rates; floor: without counts",
           "µs", [x * 1e6 for x in live], [x * 1e6 for x in floor])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=40)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    bench_dashboard(args.rounds)
    bench_worker(args.size_mb, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
