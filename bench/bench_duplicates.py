"""What --skip-duplicates costs and saves, per file, beside the floor of hashing it.

    python -m bench.bench_duplicates [--size-mb 100] [--rounds 5]

Each variant is one attempt by the worker's own `process_file` (the default
pipeline_config.json, results to a temp dir, no fsync) on the same generated log:

  floor      a bare loop: sha256 of the file, read 1 MiB at a time
  duplicate  a copy of a processed input: hashed ahead, found, a summary only
  normal     no processed input of its size (the usual case): hashed while it streams
  twin       a processed input of its size but other bytes: hashed ahead, then the
             pipeline (which reuses the hash)

Rounds run the four back to back; medians with the spread (min-max). Everything runs in
this process, warm page cache (the file is read once before the first round).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from bench.bench_pipeline import OUT, ROOT
from bench.pipeline_inputs import generate
from daemon.attempt import Job, Status
from daemon.duplicates import Earlier
from daemon.worker import process_file
from processors import load_file
from sinks.s3 import sha256_of  # the bare loop: 1 MiB reads into hashlib


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    path = OUT / f"dup-{a.size_mb}mb.log"
    generate(path, a.size_mb)
    sha = sha256_of(str(path))  # also warms the page cache
    pipeline = load_file(ROOT / "pipeline_config.json").build(trace=False)
    tmp = Path(tempfile.mkdtemp(prefix="folderd-bench-dup-"))
    first = Earlier(sha, "f" * 32, "first.log", ("first.log.out",))
    other = Earlier("0" * 64, "e" * 32, "other.log", ())

    def attempt(earlier: tuple[Earlier, ...], want: str) -> Callable[[], None]:
        def run() -> None:
            job = Job("a" * 32, path.name, path.name, str(path), 1, str(tmp), False,
                      earlier=earlier)  # fmt: skip
            outcome = process_file(job, pipeline)
            summary = outcome.summary
            duplicate = summary is not None and summary.duplicate_of is not None
            if outcome.status is not Status.PROCESSED or duplicate != (want == "duplicate"):
                raise SystemExit(f"{want}: unexpected outcome {outcome.status}")
            for temp, _ in outcome.temps:
                Path(temp).unlink()

        return run

    variants = {
        "floor": lambda: sha256_of(str(path)),
        "duplicate": attempt((first,), "duplicate"),
        "normal": attempt((), "normal"),
        "twin": attempt((other,), "twin"),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(a.rounds):
            for name, fn in variants.items():
                times[name].append(_timed(fn))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    floor = statistics.median(times["floor"])
    print(f"{a.size_mb} MB log, median of {a.rounds} rounds (min-max); noisy shared VM")
    print("| variant | seconds | MB/s | vs the hash floor |")
    print("|---|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.3f} ({min(values):.3f}-{max(values):.3f}) | "
              f"{a.size_mb / med:,.0f} | {med / floor:.2f}× |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
