"""CPU seconds per file of `main.py --drain`, the daemon and its workers together.

Throughput on a shared 2-core VM moves 2-7x between minutes with whatever else runs;
the CPU a drain of N files costs moves far less, so this is the figure to compare two
builds by on a busy machine. Each round drops `--files` x 1 KiB files, runs
`main.py --drain --no-fsync` with a pass-through pipeline and reads the children's
rusage; a drain of one file is measured the same way and subtracted (start-up and
shutdown: spawning workers, the journal). Its floor is the CPU per file of bench_daemon's
bare syscall loop (rename in, read, write result and summary, rename them, rename out),
measured in the same rounds: the JSON line's ratio is how many times the loop's CPU a file
costs in folderd (lower is better).

    python -m bench.bench_cpu [--files 3000] [--rounds 5] [--root DIR]   # DIR: another checkout
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.bench_daemon import floor_one
from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = (b"2026-11-22 10:00:00 [INFO] API: request served in 12 ms\n" * 19)[:1024]
PASS_THROUGH = b'{"version": 1, "routes": [{"start": "end"}], "nodes": [], "outputs": {"end": {}}}'


def drain_cpu(root: Path, files: int, workers: int) -> float:
    """CPU seconds (user + system, all processes) of one drain of `files` files."""
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        queue = base / "watch_dir" / "unprocessed"
        queue.mkdir(parents=True)
        for i in range(files):
            (queue / f"f{i:05d}.log").write_bytes(PAYLOAD)
        config = base / "pass.json"
        config.write_bytes(PASS_THROUGH)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [sys.executable, str(root / "main.py"), "--drain", "--no-fsync", "--settle", "0",
             "--workers", str(workers), "--config", str(config), "--log-format", "json",
             "--watch-dir", str(base / "watch_dir"), "--results-dir", str(base / "results")],
            cwd=root, check=True, stdout=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = len(list((base / "watch_dir" / "processed").iterdir()))
        if done != files:
            raise SystemExit(f"{root}: only {done} of {files} files processed")
        shutil.rmtree(base / "results")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def floor_cpu(files: int) -> float:
    """CPU µs per file of the bare syscall loop over `files` files (no fsync)."""
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        base = Path(tmp)
        for d in ("unprocessed", "underprocess", "processed", "results"):
            (base / d).mkdir()
        names = [f"f{i:05d}.log" for i in range(files)]
        for name in names:
            (base / "unprocessed" / name).write_bytes(PAYLOAD)
        before = resource.getrusage(resource.RUSAGE_SELF)
        for name in names:
            floor_one(base, name, fsync=False)
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / files * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--root", type=Path, action="append", help="checkouts to compare")
    args = p.parse_args(argv)
    roots = args.root or [ROOT]
    per_file: dict[Path, list[float]] = {r: [] for r in roots}
    floors: list[float] = []
    for _ in range(args.rounds):
        floors.append(floor_cpu(args.files))
        for root in roots:  # alternating, so a change in load hits every build alike
            fixed = drain_cpu(root, 1, args.workers)
            total = drain_cpu(root, args.files, args.workers)
            per_file[root].append((total - fixed) / args.files * 1e6)
    print(f"| checkout | CPU per file, µs (median of {args.rounds}) | range |")
    print("|---|---|---|")
    for root, values in per_file.items():
        print(f"| {root} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f}-{max(values):,.0f} |")  # fmt: skip
    print(f"| the bare syscall loop (floor) | {statistics.median(floors):,.0f} | "
          f"{min(floors):,.0f}-{max(floors):,.0f} |\n")  # fmt: skip
    for root, values in per_file.items():
        name = "" if root == ROOT else f" ({root})"
        figure("cpu", f"CPU per file, pass-through drain{name} vs the bare syscall loop",
               "µs", values, floors, workers=args.workers)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
