"""One JSON line per workload, beside each benchmark's readable table: what `python -m
bench` output is parsed by (a line that starts with `{` is a figure)."""

from __future__ import annotations

import statistics
from typing import Any

import orjson

FIGURES: list[dict[str, Any]] = []  # every figure printed in this process, for `table`


def figure(bench: str, workload: str, unit: str, values: list[float], floors: list[float],
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    """Print and return the medians of `values` and of their floors measured in the same
    rounds, the median of the per-round ratios and their spread (min, max). `floors` may be
    empty: a figure with no floor of its own (a memory check)."""
    ratios = [v / f for v, f in zip(values, floors, strict=True) if f] if floors else []
    row = {
        "bench": bench,
        "workload": workload,
        "unit": unit,
        "value": round(statistics.median(values), 3),
        "floor": round(statistics.median(floors), 3) if floors else None,
        "ratio": round(statistics.median(ratios), 3) if ratios else None,
        "spread": [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None,
        "rounds": len(values),
        **extra,
    }
    print(orjson.dumps(row).decode(), flush=True)
    FIGURES.append(row)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """The figures as one readable Markdown table (median value, floor, ratio, spread)."""
    lines = ["| bench | workload | value | floor | ratio (spread) | rounds |", "|---" * 6 + "|"]
    for r in rows:
        low, high = r["spread"] or (0, 0)
        ratio = f"{r['ratio']:.0%} ({low:.0%}-{high:.0%})" if r["ratio"] else "-"
        floor = f"{r['floor']:,.1f}" if r["floor"] is not None else "-"
        lines.append(f"| {r['bench']} | {r['workload']} | {r['value']:,.1f} {r['unit']} | "
                     f"{floor} | {ratio} | {r['rounds']} |")  # fmt: skip
    return "\n".join(lines)
