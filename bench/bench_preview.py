"""What do `--test` and the Preview cost? Each beside its floor, measured in the same run.

    python -m bench.bench_preview [--rounds 7] [--lines 20000]

  --test        wall time of `main.py --test` on the default config (its 7 cases), beside
                `main.py --check-config` (the same interpreter start and config load, no case run)
  preview       POST /api/preview of one processed file of `--lines` log lines (about 1 MB),
                against a real daemon + dashboard, beside the pipeline's own time for that
                file (the summary's duration_s) and GET /api/status (an HTTP round trip)
  cold preview  the first preview after start-up: it spawns the preview worker process
  check         POST /api/preview/check with the active config's text (what each pause in
                typing costs)

Medians of `--rounds` rounds, with min-max, and one JSON line per workload (bench/report.py)
beside its floor, per round in the same order (the cold preview: one round, beside the
median warm preview). The machine is shared and noisy: compare a
figure with its floor from the same run, not across runs. Results also go to
bench/out/preview.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.bench_dashboard import LINES, Daemon
from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "preview"
NAME = "web01_20240105.log"


def timed(fn: Callable[[], Any], rounds: int) -> dict[str, Any]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return _ms(times)


def _ms(times: list[float]) -> dict[str, Any]:
    ms = [t * 1000 for t in times]
    return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
            "max_ms": round(max(ms), 1), "rounds_ms": ms}  # fmt: skip


def _main(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    done = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"main.py {' '.join(args)} exited {done.returncode}:\n{done.stderr}")


def bench_cli(rounds: int) -> dict[str, Any]:
    return {
        "test": timed(lambda: _main("--test"), rounds),
        "check_config_floor": timed(lambda: _main("--check-config"), rounds),
    }


def bench_dashboard(rounds: int, lines: int) -> dict[str, Any]:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    daemon = Daemon(OUT, workers=1, dashboard=True)
    try:
        data = "\n".join(f"2024-01-05 10:00:00 {LINES[i % 4].format(i=i, j=i % 250)}"
                         for i in range(lines)) + "\n"  # fmt: skip
        (daemon.watch / "unprocessed" / NAME).write_text(data)
        with httpx.Client(base_url=daemon.url, timeout=60) as c:
            deadline = time.monotonic() + 60
            while not (daemon.watch / "processed" / NAME).exists():
                if time.monotonic() > deadline:
                    raise SystemExit("the sample file was not processed")
                time.sleep(0.1)
            form = {"path": (None, f"processed/{NAME}")}
            t0 = time.perf_counter()
            first = c.post("/api/preview", files=form)
            cold = time.perf_counter() - t0
            first.raise_for_status()
            durations = []

            def preview() -> None:
                r = c.post("/api/preview", files=form)
                r.raise_for_status()
                durations.append(r.json()["summary"]["duration_s"])

            text = json.dumps(json.loads((ROOT / "pipeline_config.json").read_text()), indent=2)
            result = {
                "bytes": len(data),
                "cold_preview_ms": round(cold * 1000, 1),
                "preview": timed(preview, rounds),
                "pipeline_floor": _ms(durations),
                "status_floor": timed(lambda: c.get("/api/status").raise_for_status(), rounds),
                "check": timed(
                    lambda: c.post("/api/preview/check", json={"config": text}).raise_for_status(),
                    rounds,
                ),
            }
    finally:
        daemon.stop()
    return result


def _show(label: str, m: dict[str, Any]) -> str:
    return f"{label:<34} {m['median_ms']:>8.1f} ms  ({m['min_ms']:.1f}–{m['max_ms']:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args(argv)
    cli = bench_cli(args.rounds)
    dash = bench_dashboard(args.rounds, args.lines)
    print(_show("main.py --test (7 cases)", cli["test"]))
    print(_show("  floor: main.py --check-config", cli["check_config_floor"]))
    print(_show(f"POST /api/preview ({dash['bytes'] >> 10} KiB file)", dash["preview"]))
    print(_show("  floor: the pipeline's own time", dash["pipeline_floor"]))
    print(_show("  floor: GET /api/status", dash["status_floor"]))
    print(f"{'first preview (spawns its worker)':<34} {dash['cold_preview_ms']:>8.1f} ms")
    print(_show("POST /api/preview/check", dash["check"]))
    kib = dash["bytes"] >> 10
    figure("preview", "main.py --test; floor: main.py --check-config", "ms",
           cli["test"]["rounds_ms"], cli["check_config_floor"]["rounds_ms"])  # fmt: skip
    figure("preview", f"POST /api/preview, {kib} KiB; floor: the pipeline's own time", "ms",
           dash["preview"]["rounds_ms"], dash["pipeline_floor"]["rounds_ms"],
           status_floor_ms=dash["status_floor"]["median_ms"])  # fmt: skip
    figure("preview", f"first POST /api/preview, {kib} KiB; floor: a warm preview", "ms",
           [dash["cold_preview_ms"]], [dash["preview"]["median_ms"]])  # fmt: skip
    figure("preview", "POST /api/preview/check; floor: GET /api/status", "ms",
           dash["check"]["rounds_ms"], dash["status_floor"]["rounds_ms"])  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT.parent / "preview.json").write_text(json.dumps({"cli": cli, "dashboard": dash}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
