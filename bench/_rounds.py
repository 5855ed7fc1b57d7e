"""Rounds of child-process measurements for the tabular benchmarks (bench_csv, bench_excel).

Each measurement runs `python -m bench.<module> --child VARIANT ARG...` in a fresh
process, which does the work and prints one JSON line with at least `seconds` (the work's
wall time, interpreter start-up excluded) and `rows`; its peak RSS comes from wait4().
Variants are interleaved round by round, so a burst of load on the shared machine hits
them alike; each figure is the median over the rounds, with the spread (min-max) beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def measure(module: str, variant: str, args: Sequence[str], cwd: Path = ROOT) -> dict[str, Any]:
    """One run of `variant` in a child (in the checkout `cwd`): its JSON line, plus
    `peak_rss_mb` and `cpu_s` (user + system, start-up included)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{module}", "--child", variant, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{variant} failed with exit code {os.waitstatus_to_exitcode(status)}")
    info = json.loads(out.strip().splitlines()[-1])  # the last line: logs may precede it
    info["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    info["cpu_s"] = usage.ru_utime + usage.ru_stime
    return info


def rounds(
    module: str, variants: Sequence[tuple[str, Sequence[str]]], n: int
) -> dict[str, list[dict[str, Any]]]:
    """`n` interleaved rounds of every (variant, args); the runs of each variant."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v, _ in variants}
    for i in range(n):
        for variant, args in variants:
            info = measure(module, variant, args)
            runs[variant].append(info)
            print(f"round {i + 1}/{n} {variant}: {info['seconds']:.2f} s, "
                  f"{info['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
    return runs


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def rows_per_s(runs: list[dict[str, Any]]) -> list[float]:
    """Each round's rows/s, in round order (so a variant's and its floor's pair up)."""
    return [r["rows"] / r["seconds"] for r in runs]


def rate_row(name: str, runs: list[dict[str, Any]], size_mb: float | None) -> dict[str, Any]:
    """Median rows/s (and MB/s over `size_mb`), their spread, and the median peak RSS."""
    rows = runs[0]["rows"]
    per_s = rows_per_s(runs)
    row: dict[str, Any] = {"variant": name, "rows": rows, "rounds": len(runs)}
    row["rows_s"], row["rows_s_min"], row["rows_s_max"] = median_spread(per_s)
    if size_mb is not None:
        row["mb_s"], row["mb_s_min"], row["mb_s_max"] = median_spread(
            [size_mb / r["seconds"] for r in runs]
        )
    row["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    return row
