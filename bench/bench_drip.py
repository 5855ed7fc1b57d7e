"""How soon a real daemon reports an S3 endpoint that drips its answers, and how soon it
goes on once the endpoint is good again.

    python -m bench.bench_drip [--rounds 5] [--timeout-s 3]

A daemon (`main.py`, dashboard on) mirrors each input to S3 (`deliver`, `timeout_s` as
given) through an endpoint of the tests' (`tests/hostile_servers.py`) on 127.0.0.1. Each
round the endpoint drips (200, Content-Length 100000, then one byte a second) and a file
is dropped; then, once /health has said so, the endpoint forwards to a real SeaweedFS.

  reported   seconds from the request reaching the endpoint to /health answering 503 with
             the sink named (floor: `timeout_s`, the deadline the request is cut at)
  resumed    seconds from the endpoint being good again to the file in processed/ (the
             pause's probe backs off from 1 s, doubling)

Medians of the rounds, with the spread, one JSON line each (bench/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import figure
from tests.hostile_servers import Hostile
from tests.sinks.servers import SeaweedS3

ROOT = Path(__file__).resolve().parent.parent


def _until(what: str, predicate: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def _paused(http: httpx.Client) -> bool:
    r = http.get("/health")
    check = next(c for c in r.json()["checks"] if c["name"] == "paused")
    return r.status_code == 503 and not check["ok"] and "deliver[0]" in check["detail"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout-s", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="folderd-bench-drip-") as tmp:
        base = Path(tmp)
        s3 = SeaweedS3(base)
        s3.start()
        try:
            reported, resumed = _rounds(base, s3, args.rounds, args.timeout_s)
        finally:
            s3.stop()
    floors = [args.timeout_s] * len(reported)
    figure("drip", "reported", "s", reported, floors)
    figure("drip", "resumed", "s", resumed, [])
    return 0


def _rounds(
    base: Path, s3: SeaweedS3, rounds: int, timeout_s: float
) -> tuple[list[float], list[float]]:
    bucket = s3.bucket("drip")
    watch = base / "watch"
    upstream = ("127.0.0.1", s3.ports["s3.port"])
    reported: list[float] = []
    resumed: list[float] = []
    with Hostile("drip", interval=1.0, upstream=upstream) as endpoint:
        sink = {"type": "s3", "bucket": bucket, "endpoint_url": endpoint.url,
                "timeout_s": timeout_s}  # fmt: skip
        config = base / "pipeline.json"
        config.write_text(json.dumps({"routes": [{"start": "end"}], "deliver": [sink]}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
        log = (base / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--watch-dir", str(watch), "--results-dir",
             str(base / "results"), "--config", str(config), "--port", "0", "--settle", "0.2",
             "--log-format", "json"],
            cwd=ROOT, env={**env, **s3.env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = _until("the dashboard", lambda: _dashboard_url(base / "daemon.log"), 60)
            http = httpx.Client(base_url=url, timeout=10)
            for n in range(rounds):
                _until("healthy", lambda: http.get("/health").status_code == 200)
                endpoint.mode = "drip"
                endpoint.hang_up()  # the client's kept-alive connection: it connects again
                seen = len(endpoint.accepted_at)
                (watch / "unprocessed" / f"r{n}.log").write_text(f"round {n}\n")
                _until("/health naming the sink", lambda: _paused(http))
                reported.append(time.monotonic() - endpoint.accepted_at[seen])
                endpoint.mode = "proxy"
                good = time.monotonic()
                done = watch / "processed" / f"r{n}.log"
                _until("the file processed", done.exists)
                resumed.append(time.monotonic() - good)
                print(f"round {n + 1}: reported {reported[-1]:.2f} s after the request, "
                      f"resumed {resumed[-1]:.2f} s after the endpoint was good")  # fmt: skip
            http.close()
        finally:
            daemon.kill()
            daemon.wait(30)
            log.close()
    return reported, resumed


def _dashboard_url(log: Path) -> str | None:
    for line in log.read_bytes().splitlines():
        if b"dashboard_started" in line:
            url: str = json.loads(line)["url"]
            return url
    return None


if __name__ == "__main__":
    sys.exit(main())
