"""What the worker guards cost and how fast they answer: the memory cap and the stall guard.

    python -m bench.bench_workers [--rounds 5] [--stall-rounds 3] [--stall-timeout 5]
                                  [--only memory|cap|stall]

memory   a real worker (`daemon.pool`, spawned, the default pipeline) runs one sample file
         per reader: a 35 MB log, a 25 MB CSV, a 200,000-row workbook (calamine), and a
         100 MB file delivered to S3 (a local SeaweedFS, if `weed` is installed: 8 parts in
         flight). /proc/<pid>/status is sampled every 2 ms: the peak of VmData (what
         RLIMIT_DATA, the cap, counts), VmRSS (resident) and VmSize (what RLIMIT_AS would
         count). A worker's baseline (idle, pipeline loaded) is the first row.
cap      the 35 MB log through the default pipeline, in a worker with the default cap and
         in one without (`--worker-memory-mb 0`), interleaved: MB per CPU second of the
         worker (CPU time, not wall time: the machine is shared), median of the rounds.
stall    a daemon with `--stall-timeout T` and a plugin that never returns: seconds from
         `file_started` to /health answering 503 with the `stalled` check, minus T.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("VmData", "VmRSS", "VmSize")


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in FIELDS:
                out[key] = int(value.split()[0]) >> 10  # kB -> MB
    return out


class _Peaks:
    """The peaks of a process's memory figures, sampled every 2 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, dict.fromkeys(FIELDS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = _status(self.pid)
            except OSError:
                return
            for k in FIELDS:
                self.peak[k] = max(self.peak[k], now[k])
            time.sleep(0.002)


def _samples(out: Path) -> dict[str, Path]:
    """The sample files, made once under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    log, table, book = out / "app_20240101.log", out / "table.csv", out / "book.xlsx"
    rng = random.Random(7)
    if not log.exists():
        with log.open("w") as f:
            for i in range(500_000):
                f.write(f"2024-01-01T00:00:00Z INFO comp{i % 20} message {i} with some text\n")
    if not table.exists():
        with table.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "name", "ward", "score", "joined", "active"])
            for i in range(500_000):
                w.writerow([i, f"n{rng.randrange(10_000)}", rng.randrange(40),
                            rng.random() * 100, "2020-01-01", i % 3 == 0])  # fmt: skip
    if not book.exists():
        from tests.processors.workbooks import numbers_xlsx

        numbers_xlsx(book, 200_000)
    return {"log (default pipeline)": log, "csv (default pipeline)": table,
            "xlsx (calamine)": book}  # fmt: skip


def _run_in_worker(config: dict[str, Any] | Path, files: list[Path], memory_mb: int | None,
                   tmp: Path) -> list[tuple[dict[str, int], float, str]]:  # fmt: skip
    """Each file in one real worker: (peaks, CPU seconds of the worker, status); the idle
    baseline first."""
    import psutil

    from daemon.attempt import Job
    from daemon.pool import WorkerPool
    from processors.loader import load, load_file

    loaded = load_file(config) if isinstance(config, Path) else load(config)
    pool = WorkerPool(1, loaded, memory_mb=memory_mb)
    pool.start()
    done: list[Any] = []

    def pump() -> None:
        pool.maintain()
        done.extend(pool.collect(wait(pool.handles(), 0.05)))

    out: list[tuple[dict[str, int], float, str]] = []
    try:
        while not pool.free():
            pump()
        (tmp / "tmp").mkdir(parents=True, exist_ok=True)
        pid = pool.slots[0].pid
        assert pid is not None
        worker = psutil.Process(pid)
        for path in [files[0], *files]:  # the first run loads the pipeline: the baseline
            job = Job(uuid.uuid4().hex, path.name, path.name, str(path), 1, str(tmp / "tmp"),
                      False, size=path.stat().st_size)  # fmt: skip
            count = len(done)
            with _Peaks(pid) as peaks:
                before = sum(worker.cpu_times()[:2])
                pool.submit(pool.free()[0], job)
                while len(done) == count:
                    pump()
                seconds = sum(worker.cpu_times()[:2]) - before
            if not out:
                out.append((_status(pid), 0.0, "idle"))
            else:
                out.append((peaks.peak, seconds, done[-1][1].status))
    finally:
        pool.close(timeout=5)
    return out


def bench_memory(out: Path) -> None:
    from daemon.memory import cap_mb

    samples = _samples(out)
    default = ROOT / "pipeline_config.json"
    rows = _run_in_worker(default, list(samples.values()), cap_mb(None, 2), out / "w")
    names = ["idle worker, pipeline loaded", *samples]
    s3 = _s3_rows(out)
    if s3 is not None:
        rows.append(s3)
        names.append("S3 deliver, 100 MB (8 parts in flight)")
    print("worker memory (MB), peak sampled every 2 ms:")
    print("| file | VmData (the cap) | VmRSS | VmSize (RLIMIT_AS) | status |")
    print("|---|---|---|---|---|")
    for name, (peak, _, status) in zip(names, rows, strict=True):
        print(f"| {name} | {peak['VmData']} | {peak['VmRSS']} | {peak['VmSize']} | {status} |")
        figure("workers", f"peak VmData, {name}", "MB", [peak["VmData"]], [],
               rss_mb=peak["VmRSS"], vmsize_mb=peak["VmSize"])  # fmt: skip


def _s3_rows(out: Path) -> tuple[dict[str, int], float, str] | None:
    from tests.sinks.servers import SeaweedS3, ServerMissing

    try:
        server = SeaweedS3(Path(tempfile.mkdtemp(prefix="folderd-bench-s3-")))
    except ServerMissing:
        print("(no `weed`: the S3 row is skipped)")
        return None
    server.start()
    try:
        server.bucket("mirror")
        os.environ.update(server.env)
        big = out / "big.bin"
        if not big.exists():
            big.write_bytes(os.urandom(100 << 20))
        config = {
            "version": 1,
            "reader": {"type": "none"},
            "deliver": [{"type": "s3", "bucket": "mirror", "endpoint_url": server.url}],
        }
        from daemon.memory import cap_mb

        return _run_in_worker(config, [big], cap_mb(None, 2), out / "w3")[1]
    finally:
        server.stop()


def bench_cap(out: Path, rounds: int) -> None:
    from daemon.memory import cap_mb

    log = _samples(out)["log (default pipeline)"]
    size_mb = log.stat().st_size / 1e6
    capped: list[float] = []
    free: list[float] = []
    for r in range(rounds):  # interleaved, the order swapped each round
        order = [(cap_mb(None, 2), capped), (None, free)]
        for memory_mb, into in order if r % 2 == 0 else order[::-1]:
            runs = _run_in_worker(ROOT / "pipeline_config.json", [log], memory_mb, out / "w")
            into.append(size_mb / runs[1][1])
    print(f"35 MB log, default pipeline, MB per CPU second of the worker: "
          f"{statistics.median(capped):.1f} with the default cap ({cap_mb(None, 2)} MB), "
          f"{statistics.median(free):.1f} without")  # fmt: skip
    figure("workers", "35 MB log, default pipeline, under the default cap; floor: no cap",
           "MB/CPU-s", capped, free)  # fmt: skip


def bench_stall(out: Path, rounds: int, stall_timeout: float) -> None:
    import httpx

    config = out / "hang.json"
    node = {"name": "hang", "tag": "in", "use": "tests.dashboard.hang_plugin:hang", "to": "end"}
    config.write_text(json.dumps({"version": 1, "routes": [{"start": "in"}], "nodes": [node],
                                  "outputs": {"end": {}}}))  # fmt: skip
    lags = []
    for r in range(rounds):
        base = Path(tempfile.mkdtemp(prefix="folderd-bench-stall-"))
        (base / "w" / "unprocessed").mkdir(parents=True)
        log_path = base / "log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "main.py", "--watch-dir", str(base / "w"), "--results-dir",
                 str(base / "r"), "--config", str(config), "--port", "0", "--log-format", "json",
                 "--stall-timeout", str(stall_timeout), "--stall-kill-after", "0"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = _wait_log(log_path, "dashboard_started")["url"]
            (base / "w" / "unprocessed" / "hang.log").write_text("x\n")
            _wait_log(log_path, "file_started")
            started = time.monotonic()
            with httpx.Client(base_url=url, timeout=10) as http:
                while http.get("/health").status_code != 503:
                    time.sleep(0.05)
            lags.append(time.monotonic() - started - stall_timeout)
            print(f"round {r + 1}: /health stalled {lags[-1] + stall_timeout:.2f} s after "
                  f"file_started (--stall-timeout {stall_timeout:g})", flush=True)  # fmt: skip
        finally:
            proc.kill()
            proc.wait()
    figure("workers", "stall reported by /health, seconds after --stall-timeout", "s", lags, [])


def _wait_log(path: Path, event: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_bytes().splitlines():
            if event.encode() in line:
                return json.loads(line)
        time.sleep(0.05)
    raise SystemExit(f"no {event} in {path} within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds of the cap's throughput")
    p.add_argument("--stall-rounds", type=int, default=3)
    p.add_argument("--stall-timeout", type=float, default=5.0)
    p.add_argument("--only", choices=("memory", "cap", "stall"), help="one part alone")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the samples and the hung plugin live in tests/
    out = ROOT / "bench" / "out" / "workers"
    if args.only in (None, "memory"):
        bench_memory(out)
    if args.only in (None, "cap"):
        bench_cap(out, args.rounds)
    if args.only in (None, "stall"):
        bench_stall(out, args.stall_rounds, args.stall_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
