"""Run every benchmark module (`bench/bench_*.py`), each through its `main()` with its
defaults, then print every figure they reported (`bench.report.figure`) as one table.

    python -m bench [NAME ...]    # e.g. `python -m bench daemon sinks`: only those
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bench import report


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv)
    status = 0
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        if wanted and path.stem.removeprefix("bench_") not in wanted:
            continue
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"== {path.stem}", flush=True)
        status |= module.main([]) or 0
    print(
        f"\n== every figure (median of the rounds; ratio = value / floor)\n"
        f"{report.table(report.FIGURES)}"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
