"""The daemon against the bare-syscall floor, in one run.

Workloads (issue 2):
  burst    2,000 x 1 KiB files renamed into unprocessed/ at once; files/s from the first
           drop until the last one is in processed/.
  latency  files dropped one at a time: renamed in (claimed after a 5 ms re-stat, no
           settle window), and copied in, closing them (half the settle window);
           drop-to-processed p50/p95.
The floor does only what any implementation must, per file, in one bare loop: rename the
input in, read it, write its result and summary (fsynced, renamed, directory fsynced when
durable), rename the input to processed/. Both run with and without fsync. folderd runs a
pass-through pipeline (every line to `<file>.out`), the floor's work; what the default log
pipeline costs is bench_pipeline's subject (`--config pipeline_config.json` to include it).

Each burst runs `--rounds` times, floor and folderd back to back, and the median of the
per-round ratios is the figure: on a shared VM the floor alone moves by 2-7x between
minutes. Every measurement gets a directory of its own, all removed at the end: deleting
thousands of files between runs put this VM's filesystem into a slow mode (5-8x the
system time per file) for tens of seconds, which hit whichever side ran next.

`--dir` runs it all on another filesystem, say a slower device (see the README: an ext4
image on a loop device, where an fsync costs several times what it does here).

    python -m bench.bench_daemon [--files 2000] [--rounds 3] [--samples 40] [--settle 0.5]
                                 [--config F] [--dir D]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "daemon"
PAYLOAD = (b"2026-11-22 10:00:00 [INFO] API: request served in 12 ms\n" * 19)[:1024]
PASS_THROUGH = b'{"version": 1, "routes": [{"start": "end"}], "nodes": [], "outputs": {"end": {}}}'
CONFIG: Path | None = None  # set by main(): the pipeline folderd runs


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def floor_one(base: Path, name: str, fsync: bool) -> None:
    """The minimum per-file work for the same durable outcome as the daemon's."""
    up, res = base / "underprocess" / name, base / "results"
    os.rename(base / "unprocessed" / name, up)
    with open(up, "rb") as f:
        data = f.read()
    _write(res / f".{name}.out", data, fsync)
    _write(res / f".{name}.json", b'{"status": "processed"}\n', fsync)
    os.rename(res / f".{name}.out", res / f"{name}.out")
    os.rename(res / f".{name}.json", res / f"{name}.json")
    if fsync:
        _fsync_dir(res)
    os.rename(up, base / "processed" / name)


_runs = itertools.count(1)


def _fresh(base: Path) -> Path:
    """A new, empty queue beside `base` (nothing is deleted until the whole run ends)."""
    base = base.with_name(f"{base.name}-{next(_runs)}")
    for d in ("unprocessed", "underprocess", "processed", "failed", "results", "staging"):
        (base / d).mkdir(parents=True)
    return base


def _stage(base: Path, n: int) -> list[str]:
    names = [f"f{i:05d}.log" for i in range(n)]
    for name in names:
        (base / "staging" / name).write_bytes(PAYLOAD)
    return names


def _drop(base: Path, names: list[str]) -> None:
    for name in names:
        os.rename(base / "staging" / name, base / "unprocessed" / name)


def _count(path: Path) -> int:
    with os.scandir(path) as it:
        return sum(1 for _ in it)


def floor_burst(n: int, fsync: bool) -> float:
    base = _fresh(OUT / "floor")
    names = _stage(base, n)
    t0 = time.perf_counter()
    _drop(base, names)
    for name in names:
        floor_one(base, name, fsync)
    return n / (time.perf_counter() - t0)


def floor_latency(samples: int, fsync: bool) -> list[float]:
    base = _fresh(OUT / "floor")
    names = _stage(base, samples)
    out = []
    for name in names:
        t0 = time.perf_counter()
        _drop(base, [name])
        floor_one(base, name, fsync)
        out.append(time.perf_counter() - t0)
    return out


class Daemon:
    def __init__(self, base: Path, fsync: bool, settle: float) -> None:
        args = [
            sys.executable, str(ROOT / "main.py"), "--watch-dir", str(base),
            "--results-dir", str(base / "results"), "--no-dashboard", "--settle", str(settle),
            "--log-format", "json", "--config", str(CONFIG),
        ]  # fmt: skip
        if not fsync:
            args.append("--no-fsync")
        self.log = (base / "daemon.log").open("wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"daemon_started" not in (base / "daemon.log").read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("daemon did not start: see " + str(base / "daemon.log"))
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.log.close()


def _wait_count(path: Path, n: int, timeout: float = 600, poll: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while _count(path) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {_count(path)}/{n} in {path}")
        time.sleep(poll)
    return time.perf_counter()


def daemon_burst(n: int, fsync: bool, settle: float) -> float:
    """Files/s from the drop (by rename: no settle window) until all are in processed/."""
    base = _fresh(OUT / "daemon")
    names = _stage(base, n)
    d = Daemon(base, fsync, settle)
    try:
        t0 = time.perf_counter()
        _drop(base, names)
        t1 = _wait_count(base / "processed", n)
    finally:
        d.stop()
    return n / (t1 - t0)


def daemon_latency(samples: int, fsync: bool, settle: float, cp: bool = False) -> list[float]:
    """Drop-to-processed per file: renamed in (no close event), or written in place (`cp`)."""
    base = _fresh(OUT / "daemon")
    names = _stage(base, samples)
    d = Daemon(base, fsync, settle)
    out = []
    try:
        for i, name in enumerate(names):
            t0 = time.perf_counter()
            if cp:
                shutil.copyfile(base / "staging" / name, base / "unprocessed" / name)
            else:
                _drop(base, [name])
            out.append(_wait_count(base / "processed", i + 1, poll=0.002) - t0)
    finally:
        d.stop()
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _ratio_rows(label: str, n: int, rounds: int, fsync: bool, settle: float) -> None:
    """One row per round, then the medians: floor and folderd back to back each round."""
    floors, values = [], []
    for r in range(1, rounds + 1):
        f = floor_burst(n, fsync)
        d = daemon_burst(n, fsync, settle)
        floors.append(f)
        values.append(d)
        print(f"| burst {n} x 1 KiB, files/s, round {r} | {label} | {f:,.0f} | {d:,.0f} "
              f"| {d / f:.0%} |", flush=True)  # fmt: skip
    ratios = [d / f for d, f in zip(values, floors, strict=True)]
    print(f"| burst, median of {rounds} rounds | {label} | | | "
          f"**{statistics.median(ratios):.0%}** ({min(ratios):.0%}-{max(ratios):.0%}) |",
          flush=True)  # fmt: skip
    figure("daemon", f"burst {n} x 1 KiB, fsync {'on' if fsync else 'off'}", "files/s",
           values, floors, pipeline=CONFIG.name if CONFIG else None)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    global CONFIG, OUT
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--settle", type=float, default=0.5)
    p.add_argument("--config", type=Path, help="pipeline config (default: pass-through)")
    p.add_argument("--dir", type=Path, help=f"where to run (default: {OUT})")
    args = p.parse_args(argv)
    if args.dir is not None:
        OUT = args.dir.resolve() / "folderd-bench-daemon"
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    CONFIG = args.config
    if CONFIG is None:
        CONFIG = OUT / "pass_through.json"
        CONFIG.write_bytes(PASS_THROUGH)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"filesystem of {OUT}, pipeline {CONFIG.name}")  # fmt: skip
    print("| workload | fsync | floor | folderd | folderd / floor |")
    print("|---|---|---|---|---|")
    try:
        for fsync in (True, False):
            label = "on" if fsync else "off (--no-fsync)"
            _ratio_rows(label, args.files, args.rounds, fsync, args.settle)
        for fsync in (True, False):
            label = "on" if fsync else "off (--no-fsync)"
            fl = floor_latency(args.samples, fsync)
            dl = daemon_latency(args.samples, fsync, args.settle)
            over = (_pct(dl, 50) - _pct(fl, 50)) * 1e3
            figure("daemon", f"latency renamed in, fsync {'on' if fsync else 'off'}, p50",
                   "ms", [_pct(dl, 50) * 1e3], [_pct(fl, 50) * 1e3],
                   p95_ms=round(_pct(dl, 95) * 1e3, 3))  # fmt: skip
            print(f"| latency renamed in one at a time, p50 / p95 ms | {label} | "
                  f"{_pct(fl, 50) * 1e3:.1f} / {_pct(fl, 95) * 1e3:.1f} | "
                  f"{_pct(dl, 50) * 1e3:.1f} / {_pct(dl, 95) * 1e3:.1f} | "
                  f"p50 = floor + {over:.1f} ms |", flush=True)  # fmt: skip
        cl = daemon_latency(args.samples, True, args.settle, cp=True)
        print(f"| latency, written in place (cp) and closed, p50 / p95 ms | on | - | "
              f"{_pct(cl, 50) * 1e3:.0f} / {_pct(cl, 95) * 1e3:.0f} | p50 = settle/2 + "
              f"{(_pct(cl, 50) - args.settle / 2) * 1e3:.0f} ms |", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
