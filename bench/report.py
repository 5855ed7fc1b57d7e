"""One JSON line per workload, beside each benchmark's readable table: what `python -m
bench` output is parsed by (a line that starts with `{` is a figure)."""

from __future__ import annotations

import statistics
from typing import Any

import orjson


def figure(bench: str, workload: str, unit: str, values: list[float], floors: list[float],
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    """Print and return the medians of `values` and of their floors measured in the same
    rounds, the median of the per-round ratios and their spread (min, max)."""
    ratios = [v / f for v, f in zip(values, floors, strict=True) if f]
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
    return row
