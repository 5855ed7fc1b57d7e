"""Shared mode (issue 14): what coordinating through the filesystem costs, in one run.

  throughput  one burst of `--files` 1 KiB files renamed into unprocessed/ at once, run by
              3 instances x 1 worker (--shared, one watch_dir) and, as the floor, by
              1 daemon x 3 workers; files/s from the first drop until the last is in
              processed/. The figure is the median of the per-round ratios (target >= 90 %).
              Also each loop's own CPU (its process, not its workers) per file it
              processed, from /proc/<pid>/stat: what one more instance costs.
  takeover    3 instances on a burst; one SIGKILLed mid-burst; seconds from the kill until
              its underprocess/<instance>/ is empty, beside the least it can be (the lease
              less one renewal period: the victim may die just before renewing).

Both sides run back to back in each round, each in a fresh directory, removed at the end
(see bench_daemon for why). The machine is shared and noisy: the spread is printed too.

    python -m bench.bench_shared [--files 3000] [--rounds 3] [--lease 3] [--config F]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.bench_daemon import PASS_THROUGH, ROOT, _drop, _fresh, _stage, _wait_count
from bench.report import figure
from daemon.shared.lease import RENEW_FRACTION

OUT = ROOT / "bench" / "out" / "shared"


class Instance:
    def __init__(self, base: Path, config: Path, *args: str, log: str = "daemon") -> None:
        cmd = [
            sys.executable, str(ROOT / "main.py"), "--watch-dir", str(base),
            "--results-dir", str(base / "results"), "--no-dashboard", "--settle", "0.5",
            "--log-format", "json", "--config", str(config), *args,
        ]  # fmt: skip
        self.log_path = base / f"{log}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_started(self) -> None:
        deadline = time.monotonic() + 60
        while b"daemon_started" not in self.log_path.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"daemon did not start: see {self.log_path}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(60)
        self.log.close()


def _start(base: Path, config: Path, instances: int, workers: int, lease: float) -> list[Instance]:
    if instances == 1:
        started = [Instance(base, config, "--workers", str(workers))]
    else:
        shared = ("--shared", "--lease", str(lease), "--workers", str(workers))
        started = [Instance(base, config, *shared, "--instance", f"i{k}", log=f"i{k}")
                   for k in range(instances)]  # fmt: skip
    for d in started:
        d.wait_started()
    return started


def _loop_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one daemon process so far, its workers left out."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def burst(n: int, config: Path, instances: int, workers: int, lease: float) -> tuple[float, float]:
    """Files/s of one burst, and the CPU seconds each loop spent on it (the mean over the
    instances: each loop's own process, not its workers)."""
    base = _fresh(OUT / f"{instances}x{workers}")
    names = _stage(base, n)
    daemons = _start(base, config, instances, workers, lease)
    try:
        before = [_loop_cpu(d.proc.pid) for d in daemons]
        t0 = time.perf_counter()
        _drop(base, names)
        t1 = _wait_count(base / "processed", n)
        cpu = [_loop_cpu(d.proc.pid) - b for d, b in zip(daemons, before, strict=True)]
    finally:
        for d in daemons:
            d.stop()
    return n / (t1 - t0), statistics.mean(cpu)


def takeover(n: int, config: Path, lease: float) -> float:
    base = _fresh(OUT / "takeover")
    names = _stage(base, n)
    victim, *peers = _start(base, config, 3, 1, lease)
    claims = base / "underprocess" / "i0"
    try:
        _drop(base, names)
        _wait_count(base / "processed", n // 4)
        victim.stop(signal.SIGKILL)
        killed = time.perf_counter()
        if not any(claims.iterdir()):
            raise SystemExit("the victim held no claim when killed: use more --files")
        while any(claims.iterdir()):
            if time.perf_counter() - killed > 10 * lease + 60:
                raise SystemExit("no takeover")
            time.sleep(0.01)
        took = time.perf_counter() - killed
        _wait_count(base / "processed", n)
    finally:
        for d in peers:
            d.stop()
    return took


def _spread(values: list[float], fmt: str) -> str:
    return f"median {fmt.format(statistics.median(values))} (min {fmt.format(min(values))}, " \
           f"max {fmt.format(max(values))})"  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_shared", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--files", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--lease", type=float, default=3.0, help="seconds (short, for the bench)")
    p.add_argument("--config", type=Path, help="pipeline (default: pass-through)")
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config is None:
        config = OUT / "pass_through.json"
        config.write_bytes(PASS_THROUGH)
    print(f"{args.files} files x {args.rounds} rounds, {os.cpu_count()} CPUs (shared VM: noisy)")
    try:
        ratios, shared_fps, floor_fps, floor_cpu, shared_cpu = [], [], [], [], []
        for r in range(1, args.rounds + 1):
            floor, f_cpu = burst(args.files, config, 1, 3, args.lease)
            shared, s_cpu = burst(args.files, config, 3, 1, args.lease)
            ratios.append(shared / floor)
            floor_fps.append(floor)
            shared_fps.append(shared)
            floor_cpu.append(f_cpu * 1e3 / args.files)  # ms of loop CPU per file processed
            shared_cpu.append(s_cpu * 3e3 / args.files)  # each loop processes a third
            print(f"round {r}: 1x3 workers {floor:7.0f} files/s   3x1 shared {shared:7.0f} "
                  f"files/s   ratio {shared / floor:6.1%}   loop CPU per file processed "
                  f"{floor_cpu[-1]:.2f} / {shared_cpu[-1]:.2f} ms", flush=True)  # fmt: skip
        print(f"throughput 1 instance x 3 workers (floor): {_spread(floor_fps, '{:.0f}')} files/s")
        print(f"throughput 3 instances x 1 worker:         {_spread(shared_fps, '{:.0f}')} files/s")
        print(f"shared / floor: {_spread(ratios, '{:.1%}')}  (target >= 90 %)")
        print(f"loop CPU per file it processes, ms: 1 instance {_spread(floor_cpu, '{:.2f}')}, "
              f"each of 3 instances {_spread(shared_cpu, '{:.2f}')}")  # fmt: skip
        took = []
        for r in range(1, args.rounds + 1):
            took.append(takeover(args.files, config, args.lease))
            print(f"round {r}: takeover {took[-1]:.2f} s after SIGKILL", flush=True)
        least = args.lease * (1 - RENEW_FRACTION)  # killed just before a renewal was due
        print(f"takeover after SIGKILL: {_spread(took, '{:.2f}')} s; lease {args.lease:g} s, "
              f"so the least it can be is {least:g} s\n")  # fmt: skip
        figure("shared", f"{args.files} files, 3 shared instances x 1 worker vs 1 x 3 workers",
               "files/s", shared_fps, floor_fps)  # fmt: skip
        figure("shared", "loop CPU per file it processes, a shared instance vs one daemon",
               "ms", shared_cpu, floor_cpu)  # fmt: skip
        figure("shared", f"takeover after SIGKILL, lease {args.lease:g} s vs the least possible",
               "s", took, [least] * len(took))  # fmt: skip
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
