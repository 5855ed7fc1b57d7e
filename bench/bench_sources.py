"""Sources: a folder mirrored to S3 beside `rclone copy` and `aws s3 sync`, and an
unchanged rescan beside a bare `os.scandir` walk.

    python -m bench.bench_sources [--files 1000] [--total-mb 1000] [--rounds 3]
                                  [--rescan-files 100000] [--only s3|rescan]

  s3      FILES files of mixed sizes (1 KiB to 50 MiB, log-uniform, about TOTAL MB in all)
          copied to SeaweedFS (as the sink tests run it) three ways, each into a bucket
          of its own: folderd (a running daemon; a job on an ad-hoc source whose pipeline
          is the mirror recipe: reader `none`, `deliver` to S3; the job's time, from the
          POST to the end the job records), `rclone copy` (Debian's rclone, its defaults)
          and `aws s3 sync` (PyPI's awscli, its defaults). Each round: the first sync into
          empty buckets, a re-sync with nothing changed, and a re-sync after 1 % of the
          files changed (a new first KiB). Wall time and peak RSS (folderd: the daemon
          and its workers together, sampled every 50 ms; the tools: wait4).
  rescan  an unchanged rescan of a source of N files (in 100 folders) in a child process:
          the scanner's walk against its journal (a stat per file, each folder compared
          with its rows read at once; no list of the files held) beside a bare walk that
          stats every file (`os.scandir` + `lstat`), its floor; seconds, CPU seconds and
          peak RSS, at N/10 files too, to show memory stays flat.

Medians of the rounds, the spread beside them; one JSON line per figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.report import figure
from tests.sinks.servers import S3_KEY, S3_SECRET, SeaweedS3, ServerMissing

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "sources"
KIB, MIB = 1 << 10, 1 << 20


# -- the data ----------------------------------------------------------------------------
def make_files(top: Path, n: int, total_mb: int, seed: int = 29) -> int:
    """`n` files of log-uniform sizes from 1 KiB to 50 MiB, scaled to about `total_mb` MB
    in all (each under 50 MiB); the bytes written."""
    rng = random.Random(seed)
    raw = [KIB * (50 * KIB) ** rng.random() for _ in range(n)]
    scale = total_mb * MIB / sum(raw)
    sizes = [max(KIB, min(50 * MIB, int(s * scale))) for s in raw]
    block = rng.randbytes(MIB)
    for i, size in enumerate(sizes):
        path = top / f"d{i % 10}" / f"file{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.write(f"{i:08d}".encode())  # every file its own bytes
            left = size - 8
            while left > 0:
                f.write(block[: min(left, MIB)])
                left -= MIB
    return sum(sizes)


def change_some(top: Path, fraction: float, round_: int) -> int:
    """Rewrite the first KiB of `fraction` of the files (same size, new bytes, new mtime)."""
    files = sorted(top.rglob("*.bin"))
    picked = files[:: max(1, round(1 / fraction))]
    for p in picked:
        with p.open("r+b") as f:
            f.write(f"changed in round {round_}".encode().ljust(KIB, b"."))
    return len(picked)


# -- the three ways ----------------------------------------------------------------------
class Folderd:
    """A daemon with its dashboard on a free port; a job per sync."""

    def __init__(self, server: SeaweedS3, data: Path, workers: int | None) -> None:
        self.server, self.data, self.workers = server, data, workers
        self.base = OUT / "folderd"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        self.url = ""
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        sink = {"type": "s3", "bucket": "folderd", "endpoint_url": self.server.url}
        config = {"routes": [{"start": "end", "reader": {"type": "none"}}], "deliver": [sink]}
        (self.base / "mirror.json").write_text(json.dumps(config))
        log = (self.base / "daemon.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--config", str(self.base / "mirror.json"),
             "--watch-dir", str(self.base / "watch_dir"), "--results-dir",
             str(self.base / "results"), "--port", "0", "--log-format", "json",
             "--source-roots", str(self.data.parent),
             *(["--workers", str(self.workers)] if self.workers else [])],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **self.server.env},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.url:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"folderd did not start: {self.base / 'daemon.log'}")
            time.sleep(0.1)
            for line in (self.base / "daemon.log").read_bytes().splitlines():
                with contextlib.suppress(ValueError):
                    ev = json.loads(line)
                    if ev.get("event") == "dashboard_started":
                        self.url = ev["url"]

    def sync(self) -> tuple[float, float, dict[str, Any]]:
        """(seconds, peak RSS MB of the daemon and its workers, the job at its end)."""
        assert self.proc is not None
        peak = _TreeRss(self.proc.pid)
        with httpx.Client(base_url=self.url, timeout=30) as http:
            started = time.time()
            job = http.post("/api/sources", json={"path": str(self.data)}).json()
            while job["state"] not in ("done", "cancelled"):
                # the job's own end time is the figure, so the polling need not be fast (at
                # 20 a second, it took a tenth of the daemon's CPU from a loaded machine)
                time.sleep(0.25)
                job = http.get(f"/api/sources/jobs/{job['id']}").json()
            seconds = job["finished"] - started
        return seconds, peak.stop(), job

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


class _TreeRss:
    """The largest sum of RSS over a process and its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.05):
            total = 0
            with contextlib.suppress(psutil.Error):
                for p in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak / MIB


def _tool(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one run of a command (wait4)."""
    started = time.perf_counter()
    # a CA bundle set for the machine makes rclone refuse its plain-HTTP endpoint
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.Popen(cmd, env={**base, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def rclone(server: SeaweedS3, data: Path) -> tuple[float, float]:
    env = {"RCLONE_CONFIG_SW_TYPE": "s3", "RCLONE_CONFIG_SW_PROVIDER": "SeaweedFS",
           "RCLONE_CONFIG_SW_ENDPOINT": server.url, "RCLONE_CONFIG_SW_ACCESS_KEY_ID": S3_KEY,
           "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": S3_SECRET}  # fmt: skip
    return _tool(["rclone", "copy", str(data), "sw:rclone"], env)


def aws(server: SeaweedS3, data: Path) -> tuple[float, float]:
    cmd = ["aws", "s3", "sync", str(data), "s3://aws", "--endpoint-url", server.url,
           "--only-show-errors"]  # fmt: skip
    return _tool(cmd, server.env)


def _empty(server: SeaweedS3, bucket: str) -> None:
    s3 = server.client()
    with contextlib.suppress(Exception):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=o["Key"])
    with contextlib.suppress(Exception):
        s3.create_bucket(Bucket=bucket)


def bench_s3(n: int, total_mb: int, rounds: int, workers: int | None) -> None:
    if shutil.which("rclone") is None or shutil.which("aws") is None:
        print("skipped: needs `rclone` (apt-get install rclone) and `aws` (pip install awscli)")
        return
    data = OUT / "data" / "folder"
    size = make_files(data, n, total_mb)
    print(
        f"{n} files, {size / MIB:,.0f} MiB; {rounds} rounds; folderd --workers "
        f"{workers or 'default'}",
        flush=True,
    )
    server = SeaweedS3(OUT)
    server.start()
    ways = ("folderd", "rclone copy", "aws s3 sync")
    phases = ("first sync", "no change", "1 % changed")
    times: dict[tuple[str, str], list[float]] = {(w, p): [] for w in ways for p in phases}
    rss: dict[tuple[str, str], list[float]] = {(w, p): [] for w in ways for p in phases}
    folderd = Folderd(server, data, workers)
    try:
        for r in range(rounds):
            for bucket in ("folderd", "rclone", "aws"):
                _empty(server, bucket)
            folderd.stop()
            folderd.start()
            for phase in phases:
                if phase == "1 % changed":
                    change_some(data, 0.01, r)
                for way in ways:
                    if way == "folderd":
                        seconds, peak, job = folderd.sync()
                        if job["failed_files"] or job["done_files"] != n:
                            raise RuntimeError(f"folderd's job: {job}")
                    else:
                        seconds, peak = (rclone if way == "rclone copy" else aws)(server, data)
                    times[way, phase].append(seconds)
                    rss[way, phase].append(peak)
                    print(f"round {r + 1} {phase:12} {way:12} {seconds:7.2f} s "
                          f"{peak:6.0f} MB", flush=True)  # fmt: skip
    finally:
        folderd.stop()
        server.stop()
    print("| sync | folderd | rclone copy | aws s3 sync |\n|---|---|---|---|")
    for phase in phases:
        cells = []
        for way in ways:
            t = times[way, phase]
            cells.append(f"{statistics.median(t):.2f} s ({min(t):.2f}–{max(t):.2f}), "
                         f"{statistics.median(rss[way, phase]):.0f} MB")  # fmt: skip
        peers = zip(times["rclone copy", phase], times["aws s3 sync", phase], strict=True)
        faster = [min(a, b) for a, b in peers]
        figure("sources", f"folder -> S3, {phase}, {n} files {size / MIB:.0f} MiB", "s",
               times["folderd", phase], faster,
               peak_rss_mb=round(statistics.median(rss["folderd", phase])))  # fmt: skip
        print(f"| {phase} | {' | '.join(cells)} |")


# -- the rescan --------------------------------------------------------------------------
def make_tree(top: Path, n: int) -> None:
    for i in range(n):
        d = top / f"d{i % 100:02d}"
        if i < 100:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:07d}.log").write_bytes(b"x")


_RESCAN = """import json, sys, time
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
from config.sources import SourceConfig
from daemon.sources.scanner import ScanRequest, Scanner
from daemon.sources.store import Store
from daemon.sources.runtime import Sources, Runtime, after_seen
from daemon.watcher import ignore_matcher
top, db = sys.argv[1], Path(sys.argv[2])
store = Store(db)
scanner = Scanner(db, ignore_matcher(()), lambda: None)
scanner.start()
src = SourceConfig(name="bench", path=Path(top))
rt = Runtime(src, top)
def walk():
    scanner.request(ScanRequest(src, top))
    seen = 0
    while True:
        b = scanner.out.get(timeout=600)
        for s in b.seen:
            store.put(after_seen(None, rt, s, 0.0))
            seen += 1
        store.flush()
        if b.done is not None:
            return b.done, seen
first, seen = walk()
started, cpu = time.perf_counter(), time.process_time()
done, changed = walk()
took, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"seconds": took, "cpu_s": cpu, "first_s": first.seconds, "files": done.files,
                  "changed": changed}))
"""

_FLOOR = """import json, os, sys, time
started, cpu = time.perf_counter(), time.process_time()
n, stack = 0, [sys.argv[1]]
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                e.stat(follow_symlinks=False)
                n += 1
print(json.dumps({"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
                  "files": n}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the rescan child failed")
    info = json.loads(out.strip().splitlines()[-1])
    info["peak_rss_mb"] = usage.ru_maxrss / 1024
    return info


def bench_rescan(n: int, rounds: int) -> None:
    print("| files | unchanged rescan: wall (spread), CPU | peak RSS | floor: os.scandir + lstat, "
          "wall, CPU | floor's RSS |\n|---|---|---|---|---|")  # fmt: skip
    for count in (n // 10, n):
        top = OUT / f"tree{count}"
        shutil.rmtree(top, ignore_errors=True)
        make_tree(top, count)
        ours, floor, rss, floor_rss, cpu, floor_cpu = [], [], [], [], [], []
        for _ in range(rounds):
            db = OUT / f"rescan{count}.sqlite3"
            for p in OUT.glob(f"rescan{count}.sqlite3*"):
                p.unlink()
            subprocess.run(["sync"], check=False)
            r = _child(_RESCAN, str(top), str(db))
            if r["files"] != count or r["changed"] != 0:
                raise RuntimeError(f"the rescan saw {r}")
            f = _child(_FLOOR, str(top))
            ours.append(r["seconds"])
            floor.append(f["seconds"])
            cpu.append(r["cpu_s"])
            floor_cpu.append(f["cpu_s"])
            rss.append(r["peak_rss_mb"])
            floor_rss.append(f["peak_rss_mb"])
        figure("sources", f"unchanged rescan, {count:,} files", "s", ours, floor,
               peak_rss_mb=round(statistics.median(rss)))  # fmt: skip
        figure("sources", f"unchanged rescan, {count:,} files, CPU", "s", cpu, floor_cpu)
        print(f"| {count:,} | {statistics.median(ours):.2f} s ({min(ours):.2f}–{max(ours):.2f}), "
              f"{statistics.median(cpu):.2f} s | {statistics.median(rss):.0f} MB | "
              f"{statistics.median(floor):.2f} s, {statistics.median(floor_cpu):.2f} s | "
              f"{statistics.median(floor_rss):.0f} MB |", flush=True)  # fmt: skip
        shutil.rmtree(top, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--total-mb", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rescan-files", type=int, default=100_000)
    p.add_argument("--only", choices=["s3", "rescan"], action="append")
    p.add_argument(
        "--folderd-workers",
        type=int,
        help="folderd's --workers (its default: "
        "the CPU count; rclone copies 4 files at once, aws s3 sync 10 requests)",
    )
    args = p.parse_args(argv)
    only = set(args.only or ["s3", "rescan"])
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    try:
        if "rescan" in only:
            bench_rescan(args.rescan_files, args.rounds)
        if "s3" in only:
            bench_s3(args.files, args.total_mb, args.rounds, args.folderd_workers)
    except ServerMissing as exc:
        print(f"skipped: {exc} is not installed")
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
