"""CPU seconds per file of `main.py --drain`, the daemon and its workers together.

Throughput on a shared 2-core VM moves 2-7x between minutes with whatever else runs;
the CPU a drain of N files costs moves far less, so this is the figure to compare two
builds by on a busy machine. Each round drops `--files` x 1 KiB files, runs
`main.py --drain --no-fsync` with a pass-through pipeline and reads the children's
rusage; a drain of one file is measured the same way and subtracted (start-up and
shutdown: spawning workers, the journal).

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
from pathlib import Path

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--root", type=Path, action="append", help="checkouts to compare")
    args = p.parse_args()
    roots = args.root or [ROOT]
    per_file: dict[Path, list[float]] = {r: [] for r in roots}
    for _ in range(args.rounds):
        for root in roots:  # alternating, so a change in load hits every build alike
            fixed = drain_cpu(root, 1, args.workers)
            total = drain_cpu(root, args.files, args.workers)
            per_file[root].append((total - fixed) / args.files * 1e6)
    print(f"| checkout | CPU per file, µs (median of {args.rounds}) | range |")
    print("|---|---|---|")
    for root, values in per_file.items():
        print(f"| {root} | {statistics.median(values):,.0f} | "
              f"{min(values):,.0f}-{max(values):,.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
