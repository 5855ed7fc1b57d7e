"""Run every benchmark module (`bench/bench_*.py`), each through its `main()`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    status = 0
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        print(f"== {path.stem}", flush=True)
        status |= module.main([]) or 0
    return status


if __name__ == "__main__":
    sys.exit(main())
