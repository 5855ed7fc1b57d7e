"""Shared mode across hosts (issue 28): three hosts and a server as network namespaces on
one bridge (`tests.multihost.harness`), the server sharing a folder over SFTP, each host
mounting it with sshfs (`-o dir_cache=no`) and running folderd with `--shared --poll` on its
mount, its journal on local disk. Measured, in one run:

  throughput  one burst of `--files` 1 KiB files renamed into unprocessed/ on the server, run
              by 3 hosts x 1 worker and, as the floor, by 1 host x 3 workers on the same
              share (one instance, also --shared: its journal stays on local disk); files/s
              from the first drop until the last is in processed/. Also the claim races
              lost (each instance's count, from its `lease_released` line at its stop).
  takeover    3 hosts on a burst; one host's daemon group SIGKILLed mid-burst; seconds
              from the kill until its underprocess/<instance>/ on the share is empty.

Needs root (network namespaces), sshfs, sshd and iproute2; without them it says so and
does nothing. The machine is shared and noisy: medians of the rounds, spread beside them.

    python -m bench.bench_multihost [--files 1000] [--rounds 3] [--lease 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.bench_daemon import PASS_THROUGH, PAYLOAD, ROOT
from bench.report import figure
from daemon.shared.lease import RENEW_FRACTION
from tests.conftest import log_events
from tests.multihost.harness import Lan, missing

HOSTS = ["h0", "h1", "h2"]


class Host:
    """folderd on one host of the Lan, on its mount of the share."""

    def __init__(self, lan: Lan, host: str, mnt: Path, run: str, workers: int, lease: float,
                 poll: float, config: Path, base: Path) -> None:  # fmt: skip
        watch = mnt / run
        self.log_path = base / f"{run}-{host}.log"
        cmd = [
            *lan.on(host), sys.executable, str(ROOT / "main.py"),
            "--watch-dir", str(watch / "watch"), "--results-dir", str(watch / "results"),
            "--shared", "--instance", host, "--state-dir", str(base / f"{run}-{host}-state"),
            "--poll", "--poll-interval", str(poll), "--settle", "0.5", "--lease", str(lease),
            "--workers", str(workers), "--no-dashboard", "--log-format", "json",
            "--config", str(config),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def events(self, name: str) -> list[dict[str, object]]:
        return log_events(self.log_path, name)

    def wait_started(self) -> None:
        deadline = time.monotonic() + 90
        while not self.events("daemon_started"):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"daemon did not start: see {self.log_path}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None and sig == signal.SIGKILL:
            os.killpg(self.proc.pid, sig)  # a crash: its workers too
        elif self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(120)


def _count(path: Path) -> int:
    try:
        with os.scandir(path) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def _wait(path: Path, n: int, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    while _count(path) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {_count(path)}/{n} in {path}")
        time.sleep(0.02)
    return time.perf_counter()


class Bench:
    def __init__(self, lan: Lan, base: Path, config: Path, lease: float, poll: float) -> None:
        self.lan, self.base, self.config, self.lease, self.poll = lan, base, config, lease, poll
        self.export = lan.serve(base / "export")
        self.mounts = {h: lan.mount(h, self.export) for h in HOSTS}
        self.runs = 0

    def _share(self, n: int) -> tuple[str, Path, list[str]]:
        self.runs += 1
        run = f"run{self.runs}"
        top = self.export / run
        for d in ("watch/unprocessed", "results", "staging"):
            (top / d).mkdir(parents=True)
        names = [f"f{i:05d}.log" for i in range(n)]
        for name in names:
            (top / "staging" / name).write_bytes(PAYLOAD)
        return run, top, names

    def _start(self, run: str, hosts: list[str], workers: int) -> list[Host]:
        started = [Host(self.lan, h, self.mounts[h], run, workers, self.lease, self.poll,
                        self.config, self.base) for h in hosts]  # fmt: skip
        for h in started:
            h.wait_started()
        return started

    def burst(self, n: int, hosts: list[str], workers: int) -> tuple[float, int]:
        """Files/s of one burst, and the claim races the instances lost."""
        run, top, names = self._share(n)
        started = self._start(run, hosts, workers)
        try:
            t0 = time.perf_counter()
            for name in names:
                os.rename(top / "staging" / name, top / "watch" / "unprocessed" / name)
            t1 = _wait(top / "watch" / "processed", n)
        finally:
            for h in started:
                h.stop()
        lost = sum(int(e.get("lost_races") or 0)  # type: ignore[call-overload]
                   for h in started for e in h.events("lease_released"))  # fmt: skip
        return n / (t1 - t0), lost

    def takeover(self, n: int) -> float:
        run, top, names = self._share(n)
        victim, *peers = self._start(run, HOSTS, 1)
        claims = top / "watch" / "underprocess" / "h0"
        try:
            for name in names:
                os.rename(top / "staging" / name, top / "watch" / "unprocessed" / name)
            _wait(top / "watch" / "processed", n // 4)
            while not _count(claims):
                time.sleep(0.005)  # killed while it holds a claim
            victim.stop(signal.SIGKILL)
            killed = time.perf_counter()
            while _count(claims):
                if time.perf_counter() - killed > 10 * self.lease + 60:
                    raise SystemExit("no takeover")
                time.sleep(0.01)
            took = time.perf_counter() - killed
            _wait(top / "watch" / "processed", n)
        finally:
            for h in peers:
                h.stop()
        return took


def _spread(values: list[float], fmt: str) -> str:
    return f"median {fmt.format(statistics.median(values))} (min {fmt.format(min(values))}, " \
           f"max {fmt.format(max(values))})"  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_multihost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--lease", type=float, default=3.0, help="seconds (short, for the bench)")
    p.add_argument("--poll-interval", type=float, default=1.0, help="folderd's, seconds")
    args = p.parse_args(argv)
    why = missing()
    if why:
        print(f"bench_multihost: not run here: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="folderd-bench-lan-") as tmp:
        base = Path(tmp)
        config = base / "pass_through.json"
        config.write_bytes(PASS_THROUGH)
        print(f"{args.files} files x {args.rounds} rounds over sshfs, 3 hosts + a server as "
              f"network namespaces, --poll-interval {args.poll_interval:g}, {os.cpu_count()} "
              "CPUs (shared VM: noisy)")  # fmt: skip
        with Lan(base, HOSTS) as lan:
            bench = Bench(lan, base, config, args.lease, args.poll_interval)
            spread_fps, floor_fps, ratios, lost = [], [], [], []
            for r in range(1, args.rounds + 1):
                floor, _ = bench.burst(args.files, ["h0"], 3)
                spread, races = bench.burst(args.files, HOSTS, 1)
                floor_fps.append(floor)
                spread_fps.append(spread)
                ratios.append(spread / floor)
                lost.append(races)
                print(f"round {r}: 1 host x 3 workers {floor:6.0f} files/s   3 hosts x 1 "
                      f"worker {spread:6.0f} files/s   ratio {spread / floor:6.1%}   claim "
                      f"races lost {races}", flush=True)  # fmt: skip
            took = []
            for r in range(1, args.rounds + 1):
                took.append(bench.takeover(args.files))
                print(f"round {r}: takeover {took[-1]:.2f} s after SIGKILL", flush=True)
        least = args.lease * (1 - RENEW_FRACTION)
        print(f"1 host x 3 workers:  {_spread(floor_fps, '{:.0f}')} files/s")
        print(f"3 hosts x 1 worker:  {_spread(spread_fps, '{:.0f}')} files/s")
        print(f"3 hosts / 1 host:    {_spread(ratios, '{:.1%}')}")
        print(f"claim races lost in a 3-host burst: {_spread([float(x) for x in lost], '{:.0f}')}"
              f" of {args.files} claims")  # fmt: skip
        print(f"takeover after SIGKILL: {_spread(took, '{:.2f}')} s (lease {args.lease:g} s; "
              f"the least it can be is {least:g} s)\n")  # fmt: skip
        figure("multihost", f"{args.files} files over sshfs, 3 hosts x 1 worker vs 1 host x 3",
               "files/s", spread_fps, floor_fps)  # fmt: skip
        figure("multihost", f"takeover after SIGKILL across hosts, lease {args.lease:g} s",
               "s", took, [least] * len(took))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
