"""What does paging through a 1 GB output cost the daemon (its dashboard's memory and
time)?

    python -m bench.bench_viewer [--mb 1024] [--rounds 3]

A real daemon (1 worker) with a pass-through config (every line to the output `end`)
processes one `--mb` MB log, so results/ holds a 1 GB output; then, through
`GET /api/files/<id>/view`, as the file page's viewer asks:

  first page          the first 50 lines of the output
  last line, cold     a jump to the file's last line with a fresh line index: requests of
                      at most 128 MiB read each, asked again until one holds the line
  last line, warm     the same jump again: one seek from the index
  filter, whole file  the only line holding a rare text (the last): a scan of the file
  middle, warm        a jump to the middle line, then the next page from there

Each round restarts the dashboard's index by touching the output (a new mtime is a new
file version). The daemon's peak RSS while paging is its VmHWM, reset (`clear_refs`) after
the file is processed, so the processing's own peak is not counted; beside it, its RSS
before. Medians of `--rounds` rounds with min-max. Results go to bench/out/viewer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_dashboard import Daemon
from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "viewer"
NAME = "big_20240105.log"
LINE = b"2024-01-05 10:00:01 [INFO] API: request handled in 5 ms for user 1234567 on web-03\n"
NEEDLE = b"2024-01-05 23:59:59 [ERROR] DB: the one needle in the file\n"
PASS_THROUGH = {"version": 1, "routes": [{"start": "end"}], "nodes": [], "outputs": {"end": {}}}


def write_input(path: Path, mb: int) -> int:
    """`mb` MB of log lines and a last line holding the needle; the number of lines."""
    block = LINE * 10_000
    count = (mb << 20) // len(block)
    with path.open("wb") as f:
        for _ in range(count):
            f.write(block)
        f.write(NEEDLE)
    return count * 10_000 + 1


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) << 10
    raise KeyError(key)


def until_whole(c: httpx.Client, url: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Ask, and again while the answer is partial (as the page's script does)."""
    asks = 0
    while True:
        asks += 1
        r = c.get(url, params=params)
        r.raise_for_status()
        body = r.json()
        if not body["partial"]:
            return body, asks
        params = {**params, "line": body["next"]}


def one_round(c: httpx.Client, url: str, lines: int, output: Path) -> dict[str, Any]:
    os.utime(output)  # a new version to the dashboard: its line index starts empty
    times: dict[str, Any] = {}
    part = {"part": "output", "name": output.name}

    t0 = time.perf_counter()
    first = c.get(url, params={**part, "n": 50}).json()
    times["first_page_ms"] = (time.perf_counter() - t0) * 1000
    assert [ln["number"] for ln in first["lines"]] == list(range(1, 51))

    t0 = time.perf_counter()
    last, asks = until_whole(c, url, {**part, "line": lines, "n": 50})
    times["last_cold_ms"], times["last_cold_asks"] = (time.perf_counter() - t0) * 1000, asks
    assert [ln["number"] for ln in last["lines"]] == [lines], last["lines"][:1]

    t0 = time.perf_counter()
    again = c.get(url, params={**part, "line": lines, "n": 50}).json()
    times["last_warm_ms"] = (time.perf_counter() - t0) * 1000
    assert not again["partial"] and again["lines"][0]["number"] == lines

    t0 = time.perf_counter()
    found, asks = until_whole(c, url, {**part, "q": "the one needle", "n": 5})
    times["filter_ms"], times["filter_asks"] = (time.perf_counter() - t0) * 1000, asks
    assert [ln["number"] for ln in found["lines"]] == [lines]

    t0 = time.perf_counter()
    middle = c.get(url, params={**part, "line": lines // 2, "n": 50}).json()
    following = c.get(url, params={**part, "line": middle["next"], "n": 50}).json()
    times["middle_warm_ms"] = (time.perf_counter() - t0) * 1000
    assert following["lines"][0]["number"] == lines // 2 + 50
    return times


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    config = OUT / "pass_through.json"
    config.write_text(json.dumps(PASS_THROUGH))
    daemon = Daemon(OUT, workers=1, dashboard=True, extra=["--config", str(config)])
    try:
        staged = daemon.watch / f".{NAME}.tmp"
        lines = write_input(staged, args.mb)
        t0 = time.perf_counter()
        staged.rename(daemon.watch / "unprocessed" / NAME)
        deadline = time.monotonic() + 3600
        while not (daemon.watch / "processed" / NAME).exists():
            if time.monotonic() > deadline or daemon.proc.poll() is not None:
                log = daemon.log_path.read_text()[-2000:]
                raise SystemExit(f"the input was not processed:\n{log}")
            time.sleep(0.5)
        processed_s = time.perf_counter() - t0
        with httpx.Client(base_url=daemon.url, timeout=600) as c:
            row = c.get("/api/files", params={"q": NAME}).json()["files"][0]
            output = OUT / "results" / row["outputs"][0]  # `end` goes to <name>.out
            size = output.stat().st_size
            url = f"/api/files/{row['uid']}/view"
            pid = daemon.proc.pid
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
            rss_before = _status(pid, "VmRSS")
            runs = [one_round(c, url, lines, output) for _ in range(args.rounds)]
            peak = _status(pid, "VmHWM")
    finally:
        daemon.stop()
    keys = ("first_page_ms", "last_cold_ms", "last_warm_ms", "filter_ms", "middle_warm_ms")
    summary = {k: [r[k] for r in runs] for k in keys}
    result = {
        "output_bytes": size,
        "lines": lines,
        "processed_s": round(processed_s, 1),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "asks": {"last_cold": runs[0]["last_cold_asks"], "filter": runs[0]["filter_asks"]},
        **{k: _spread(v) for k, v in summary.items()},
    }
    gib = size / 2**30
    print(f"output: {gib:.2f} GiB, {lines:,} lines (processed in {processed_s:.0f} s)")
    print(f"daemon RSS before paging {result['rss_before_mb']} MB, peak while paging "
          f"{result['peak_rss_mb']} MB")  # fmt: skip
    for k in keys:
        m = result[k]
        print(f"{k:<16} {m['median']:>9.1f} ms  ({m['min']:.1f}–{m['max']:.1f})")
    asks = result["asks"]
    print(f"requests: last line cold {asks['last_cold']}, filter {asks['filter']}")
    figure("viewer", f"daemon peak RSS paging a {gib:.1f} GiB output; floor: RSS before", "MB",
           [result["peak_rss_mb"]], [result["rss_before_mb"]])  # fmt: skip
    for k in keys:
        figure("viewer", f"{k.removesuffix('_ms')}, {gib:.1f} GiB output", "ms", summary[k], [])
    (OUT.parent / "viewer.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
