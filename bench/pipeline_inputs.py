"""The inputs the pipeline benchmarks read: a realistic log of a given size, lines just
under the reader's limit, and a stack trace that never ends (bench/out/, gitignored)."""

from __future__ import annotations

import random
from pathlib import Path

LEVELS = ["INFO"] * 70 + ["DEBUG"] * 15 + ["WARN"] * 8 + ["ERROR"] * 6 + ["CRITICAL"]
COMPONENTS = ["API", "DB", "Auth", "Cache", "Scheduler", "Worker", "http.server", "Billing"]
MESSAGES = [
    "request handled in {n} ms",
    "user {n} logged in from 10.0.{m}.{n}",
    "cache miss for key session:{n}",
    "retrying job {n} (attempt {m})",
    "connection pool exhausted, waiting {n} ms",
    "payment {n} declined: insufficient funds",
    "slow query took {n} ms: SELECT * FROM orders WHERE id = {m}",
]


def generate(path: Path, size_mb: int) -> None:
    """A realistic application log: mostly `[LEVEL] Component: message`, a few odd lines."""
    if path.exists() and path.stat().st_size >= size_mb << 20:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    block = []
    for i in range(20_000):
        level, comp = rng.choice(LEVELS), rng.choice(COMPONENTS)
        msg = rng.choice(MESSAGES).format(n=rng.randrange(10_000), m=rng.randrange(100))
        ts = f"2026-11-22 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        if i % 500 == 499:
            block.append(f"    at com.example.Handler.run(Handler.java:{i % 97})")
        elif i % 200 == 199:
            block.append(f"{ts} | {level} | {comp} | {msg}")
        else:
            block.append(f"{ts} [{level}] {comp}: {msg}")
    data = ("\n".join(block) + "\n").encode()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        written = 0
        while written < size_mb << 20:
            f.write(data)
            written += len(data)
    tmp.rename(path)


def generate_long_lines(path: Path, line_bytes: int, count: int) -> None:
    """`count` lines of `line_bytes` bytes each, written a block at a time: a child's peak
    RSS starts from its parent's (Linux keeps the high-water mark across fork and exec)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    block = (b"2026-11-22 10:00:00 [INFO] API: payload=" + b"0123456789abcdef" * 62) * 1024
    with path.open("wb") as f:
        for _ in range(count):
            left = line_bytes
            while left:
                left -= f.write(block[:left])
            f.write(b"\n")


def generate_endless_trace(path: Path, size_mb: int) -> None:
    """One log record, then stack frames to `size_mb`: a trace that never ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = "".join(
        f"\tat com.example.Endless.call{i % 97}(Endless.java:{i})\n" for i in range(20_000)
    )
    block = frames.encode()
    with path.open("wb") as f:
        f.write(b"2026-11-22 10:00:00 [ERROR] App: a stack trace that never ends\n")
        written = 0
        while written < size_mb << 20:
            f.write(block)
            written += len(block)
