"""Is the dashboard free? A 10,000-file burst with and without it.

    python -m bench.bench_dashboard [--files 10000] [--workers 2] [--repeat 1]

Each run starts a real daemon (`main.py`) on a fresh queue under bench/out/, moves
`--files` small generated logs into unprocessed/ at once (one rename each), and waits until
they are all in processed/. Throughput is files over the time from the first rename to
the last file processed (the bench counts processed/ every 0.2 s, the same in both runs).

  no-dashboard  `--no-dashboard`
  dashboard     the dashboard on, and "open": one client on the live SSE stream and
                refetching the overview fragment every second (what the Overview page
                does), while a prober GETs /health and /api/status every 200 ms each
                (--probe-every; a Kubernetes probe or a Prometheus scrape comes every
                10-15 s) and records their latency. All clients run on the same machine,
                so their CPU is charged to the dashboard run.

Reported: throughput of both, their ratio, and p50/p95/p99/max latency of the probes over
the burst, one line per run; and one JSON line (bench/report.py) whose floor is the
throughput without the dashboard, per round. Results also go to bench/out/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "dashboard"
LINES = [
    "[INFO] API: request handled in {i} ms",
    "[WARN] Cache: cache miss for key session:{i}",
    "[ERROR] DB: connection pool exhausted, waiting {i} ms",
    "[INFO] Auth: user {i} logged in from 10.0.0.{j}",
]


def stage(staging: Path, n: int) -> list[Path]:
    staging.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = staging / f"host{i % 10}_2024{1 + i % 12:02d}{1 + i % 28:02d}-{i:05d}.log"
        p.write_text("\n".join(LINES[k % 4].format(i=i + k, j=k % 250) for k in range(20)) + "\n")
        paths.append(p)
    return paths


def _count(d: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(d))
    except FileNotFoundError:
        return 0


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def pick(p: float) -> float:
        return round(v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000, 2)

    return {"n": len(v), "p50_ms": pick(50), "p95_ms": pick(95), "p99_ms": pick(99),
            "max_ms": round(v[-1] * 1000, 2)}  # fmt: skip


class Daemon:
    def __init__(
        self, base: Path, workers: int, dashboard: bool, extra: Sequence[str] = ()
    ) -> None:
        self.base = base
        self.watch = base / "watch_dir"
        self.log_path = base / "daemon.log"
        for s in ("unprocessed", "underprocess", "processed", "failed"):
            (self.watch / s).mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable, str(ROOT / "main.py"), "--watch-dir", str(self.watch),
            "--results-dir", str(base / "results"), "--log-format", "json",
            "--workers", str(workers), "--settle", "0.2",
        ]  # fmt: skip
        args += ["--port", "0"] if dashboard else ["--no-dashboard"]
        args += extra
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = self._wait_for("daemon_started", "dashboard_started" if dashboard else None)

    def _wait_for(self, event: str, url_event: str | None) -> str:
        deadline = time.monotonic() + 60
        url = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited:\n{self.log_path.read_text()[-2000:]}")
            for line in self.log_path.read_text().splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if url_event and ev.get("event") == url_event:
                    url = ev["url"]
                if ev.get("event") == event:
                    return url
            time.sleep(0.1)
        raise SystemExit(f"daemon did not start:\n{self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()


class OpenDashboard:
    """A browser tab on the Overview page, plus a prober measuring /health and /api/status."""

    def __init__(self, url: str, probe_every: float, tab: bool = True) -> None:
        self.url = url
        self.probe_every = probe_every
        self.stop = threading.Event()
        self.latency: dict[str, list[float]] = {"/health": [], "/api/status": []}
        self.errors: list[str] = []
        self.sse_messages = 0
        self._threads = []
        if tab:
            self._threads.append(threading.Thread(target=self._sse, daemon=True))
            self._threads.append(threading.Thread(target=self._overview, daemon=True))
        if probe_every > 0:
            self._threads.append(threading.Thread(target=self._probe, daemon=True))

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(10)

    def _sse(self) -> None:
        try:
            with httpx.stream("GET", self.url + "/events", timeout=None) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        self.sse_messages += 1
                    if self.stop.is_set():
                        return
        except httpx.HTTPError as exc:
            if not self.stop.is_set():
                self.errors.append(f"sse: {exc}")

    def _overview(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self.stop.wait(1.0):
                c.get("/?fragment=1")

    def _probe(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self.stop.is_set():
                for path in self.latency:
                    t0 = time.perf_counter()
                    r = c.get(path)
                    self.latency[path].append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        self.errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                self.stop.wait(self.probe_every)


def run(
    n: int, workers: int, dashboard: bool, probe_every: float, tab: bool = True
) -> dict[str, Any]:
    base = OUT / ("dashboard" if dashboard else "no-dashboard")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    files = stage(base / "staging", n)
    daemon = Daemon(base, workers, dashboard)
    client = OpenDashboard(daemon.url, probe_every, tab) if dashboard else None
    try:
        if client:
            client.start()
            time.sleep(1.0)  # the tab is open before the burst
        processed = daemon.watch / "processed"
        unprocessed = daemon.watch / "unprocessed"
        t0 = time.perf_counter()
        for p in files:
            os.rename(p, unprocessed / p.name)
        while _count(processed) < n:
            if daemon.proc.poll() is not None:
                raise SystemExit(f"daemon died:\n{daemon.log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        elapsed = time.perf_counter() - t0
        cpu = psutil.Process(daemon.proc.pid).cpu_times()
    finally:
        if client:
            client.close()
        daemon.stop()
    result: dict[str, Any] = {
        "variant": "dashboard" if dashboard else "no-dashboard",
        "files": n,
        "seconds": round(elapsed, 2),
        "files_per_s": round(n / elapsed, 1),
        # CPU of the daemon process itself (main loop + dashboard thread; workers excluded):
        # what the dashboard adds, less noisy than wall time on a shared machine.
        "daemon_cpu_s": round(cpu.user + cpu.system, 2),
    }
    if client:
        result["latency"] = {path: percentiles(v) for path, v in client.latency.items()}
        result["sse_messages"] = client.sse_messages
        result["errors"] = client.errors[:10]
    shutil.rmtree(base, ignore_errors=True)
    return result


def _line(r: dict[str, Any]) -> str:
    """One run, readable (a line starting with `{` would be taken for a figure)."""
    text = (f"{r['variant']}: {r['files']} files in {r['seconds']} s, {r['files_per_s']} "
            f"files/s, daemon CPU {r['daemon_cpu_s']} s")  # fmt: skip
    for path, lat in r.get("latency", {}).items():
        if lat["n"]:
            text += (f"; {path} p50/p95/p99/max {lat['p50_ms']}/{lat['p95_ms']}/"
                     f"{lat['p99_ms']}/{lat['max_ms']} ms")  # fmt: skip
    if "sse_messages" in r:
        text += f"; {r['sse_messages']} SSE messages"
    if r.get("errors"):
        text += f"; errors: {r['errors']}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--probe-every", type=float, default=0.2, help="0: no prober")
    parser.add_argument("--no-tab", action="store_true", help="no SSE client or overview")
    parser.add_argument("--only", choices=["no-dashboard", "dashboard"])
    args = parser.parse_args(argv)
    results = []
    for _ in range(args.repeat):
        for dashboard in (False, True):
            if args.only and args.only != ("dashboard" if dashboard else "no-dashboard"):
                continue
            r = run(args.files, args.workers, dashboard, args.probe_every, not args.no_tab)
            results.append(r)
            print(_line(r), flush=True)
    if args.only:
        return 0
    # Medians over the interleaved repeats: a shared machine makes single runs noisy.
    base_fps = statistics.median(
        r["files_per_s"] for r in results if r["variant"] == "no-dashboard"
    )
    dash_fps = statistics.median(r["files_per_s"] for r in results if r["variant"] == "dashboard")
    ratio = dash_fps / base_fps
    cpu = {
        v: statistics.median(r["daemon_cpu_s"] for r in results if r["variant"] == v)
        for v in ("no-dashboard", "dashboard")
    }
    worst_p99 = max(
        lat["p99_ms"] for r in results if "latency" in r for lat in r["latency"].values()
    )
    figure("dashboard", f"burst {args.files} files, dashboard open; floor: --no-dashboard",
           "files/s", [r["files_per_s"] for r in results if r["variant"] == "dashboard"],
           [r["files_per_s"] for r in results if r["variant"] == "no-dashboard"],
           workers=args.workers, probe_p99_ms_worst=worst_p99)  # fmt: skip
    summary = {
        "files": args.files,
        "workers": args.workers,
        "no_dashboard_files_per_s": base_fps,
        "dashboard_files_per_s": dash_fps,
        "throughput_ratio": round(ratio, 3),
        "daemon_cpu_s_median": cpu,
        "probe_p99_ms_worst": worst_p99,
        "runs": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT.parent / "dashboard.json").write_text(json.dumps(summary, indent=2))
    print(
        f"no-dashboard {summary['no_dashboard_files_per_s']} files/s, dashboard open "
        f"{summary['dashboard_files_per_s']} files/s (ratio {ratio:.3f}); "
        f"/health and /api/status p99 {worst_p99} ms at worst"
    )
    ok = ratio >= 0.9 and worst_p99 <= 50
    print("PASS" if ok else "FAIL: the dashboard must cost < 10% throughput and answer < 50 ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
