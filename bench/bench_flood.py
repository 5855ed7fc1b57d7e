"""Does /health keep answering under a flood of half-sent requests?

    python -m bench.bench_flood [--connections 1100] [--nofile 1024] [--seconds 30]
                                [--http-timeout SECONDS] [--idle-probes 20]

Starts a real daemon (`main.py`, dashboard on a free port, 2 workers) whose open-file
limit is `--nofile` for both soft and hard (so it cannot raise it), then keeps
`--connections` connections to the dashboard open for `--seconds`, each having sent a
request line and one header but never the blank line that ends the head (a slowloris).
Whenever the daemon closes one, the flood opens another at once. Meanwhile:

  prober  GET /health on a new connection every 100 ms, 1 s timeout, as a monitor would;
          the figures are the longest time between two answered probes during the flood,
          and the p50/p99 latency of the answered ones
  file    one log file dropped into unprocessed/ halfway; the seconds until processed/
  log     lines and bytes the daemon's log grew by from the flood's start to its end
  idle    before the flood, the same prober for --idle-probes probes: the floor of the
          latency figure

Reported as readable lines and two JSON lines (bench/report.py): /health p50 under the
flood beside the idle p50, and the longest gap beside the 100 ms probe interval (one
round each). The result is also written to bench/out/flood.json.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "flood"
HALF_SENT = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: the head never ends


class Daemon:
    def __init__(self, base: Path, nofile: int, extra: list[str]) -> None:
        self.watch = base / "watch_dir"
        for s in ("unprocessed", "underprocess", "processed", "failed"):
            (self.watch / s).mkdir(parents=True, exist_ok=True)
        self.log_path = base / "daemon.log"
        args = [
            sys.executable, str(ROOT / "main.py"), "--watch-dir", str(self.watch),
            "--results-dir", str(base / "results"), "--log-format", "json",
            "--workers", "2", "--settle", "0.2", "--port", "0", *extra,
        ]  # fmt: skip

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=limit
        )
        self.url = self._url()

    def _url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"daemon exited:\n{self.log_path.read_text()[-2000:]}")
            for line in self.log_path.read_bytes().splitlines():
                with contextlib.suppress(ValueError):
                    ev = json.loads(line)
                    if isinstance(ev, dict) and ev.get("event") == "dashboard_started":
                        return ev["url"]
            time.sleep(0.1)
        raise SystemExit(f"daemon did not start:\n{self.log_path.read_text()[-2000:]}")

    def log_size(self) -> tuple[int, int]:
        data = self.log_path.read_bytes()
        return data.count(b"\n"), len(data)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self._log.close()


class Flood:
    """`n` half-sent connections kept open: one reopened for every one the server closes."""

    def __init__(self, port: int, n: int) -> None:
        self.address = ("127.0.0.1", port)
        self.n = n
        self.opened = 0
        self.closed_by_server = 0
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(30)

    def _open(self, sel: selectors.BaseSelector) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        sel.register(sock, selectors.EVENT_WRITE, "connecting")
        self.opened += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            for _ in range(self.n):
                self._open(sel)
            while not self.stop.is_set():
                for key, _ in sel.select(0.1):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    if key.data == "connecting" and not sock.getsockopt(
                        socket.SOL_SOCKET, socket.SO_ERROR
                    ):
                        with contextlib.suppress(OSError):
                            sock.send(HALF_SENT)
                        sel.modify(sock, selectors.EVENT_READ, "open")
                        continue
                    try:  # readable: the server answered (503) or closed it
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        continue
                    sel.unregister(sock)
                    sock.close()
                    self.closed_by_server += 1
                    self._open(sel)
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _idle_probes(url: str, n: int) -> list[float]:
    """Latency of `n` answered /health probes, 100 ms apart, before any flood."""
    out: list[float] = []
    with httpx.Client(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        for _ in range(n):
            now = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                if c.get(url + "/health").status_code in (200, 503):
                    out.append(time.monotonic() - now)
            time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
    return out


def run(
    connections: int, nofile: int, seconds: float, extra: list[str], idle_probes: int = 20
) -> dict[str, Any]:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    daemon = Daemon(OUT, nofile, extra)
    port = int(daemon.url.rsplit(":", 1)[1])
    probes: list[tuple[float, bool, float]] = []  # when, answered, latency
    max_fds = 0
    try:
        idle = sorted(_idle_probes(daemon.url, idle_probes))
        lines0, bytes0 = daemon.log_size()
        flood = Flood(port, connections)
        t0 = time.monotonic()
        flood.start()
        dropped = processed = None
        with httpx.Client(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            while (now := time.monotonic()) - t0 < seconds:
                try:
                    ok = c.get(daemon.url + "/health").status_code in (200, 503)
                except httpx.HTTPError:
                    ok = False
                probes.append((time.monotonic() - t0, ok, time.monotonic() - now))
                max_fds = max(max_fds, _fds(daemon.proc.pid))
                if dropped is None and now - t0 >= seconds / 2:
                    (daemon.watch / "unprocessed" / "during_flood.log").write_text(
                        "[INFO] API: request handled in 5 ms\n"
                    )
                    dropped = now
                if (
                    processed is None
                    and dropped
                    and (daemon.watch / "processed" / "during_flood.log").exists()
                ):
                    processed = now
                time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
        lines1, bytes1 = daemon.log_size()
        flood.close()
    finally:
        daemon.stop()
    answered = [t for t, ok, _ in probes if ok]
    latency = sorted(dt for _, ok, dt in probes if ok)
    gaps = [b - a for a, b in zip([0.0, *answered], [*answered, seconds], strict=True)]
    return {
        "connections": connections,
        "nofile": nofile,
        "seconds": seconds,
        "extra_args": extra,
        "flood_opened": flood.opened,
        "flood_closed_by_server": flood.closed_by_server,
        "probes": len(probes),
        "probes_answered": len(answered),
        "health_longest_gap_s": round(max(gaps), 2),
        "health_latency_ms": {
            "p50": round(latency[len(latency) // 2] * 1000, 1) if latency else None,
            "p99": round(latency[int(len(latency) * 0.99)] * 1000, 1) if latency else None,
        },
        "health_idle_latency_ms": {
            "p50": round(idle[len(idle) // 2] * 1000, 1) if idle else None,
            "probes": len(idle),
        },
        "daemon_max_fds": max_fds,
        "file_processed_after_s": round(processed - dropped, 2) if processed and dropped else None,
        "log_lines_added": lines1 - lines0,
        "log_bytes_added": bytes1 - bytes0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--http-timeout", help="passed to the daemon")
    parser.add_argument("--idle-probes", type=int, default=20, help="before the flood")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 64:  # the flood's own sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    extra = ["--http-timeout", args.http_timeout] if args.http_timeout else []
    result = run(args.connections, args.nofile, args.seconds, extra, args.idle_probes)
    for key, value in result.items():  # readable: a line starting with `{` is a figure
        print(f"{key}: {value}", flush=True)
    load = f"{args.connections} half-sent connections, nofile {args.nofile}"
    busy, idle = result["health_latency_ms"]["p50"], result["health_idle_latency_ms"]["p50"]
    if busy is not None and idle is not None:
        figure("flood", f"/health p50 under {load}; floor: idle p50", "ms", [busy], [idle],
               p99_ms=result["health_latency_ms"]["p99"])  # fmt: skip
    figure("flood", f"/health longest gap under {load}; floor: the 100 ms probe interval", "s",
           [result["health_longest_gap_s"]], [0.1],
           file_processed_after_s=result["file_processed_after_s"],
           probes_answered=result["probes_answered"], probes=result["probes"])  # fmt: skip
    (OUT.parent / "flood.json").write_text(json.dumps(result, indent=2))
    ok = result["health_longest_gap_s"] <= 5 and result["file_processed_after_s"] is not None
    print("PASS" if ok else "FAIL: /health must answer within 5 s and the file be processed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
