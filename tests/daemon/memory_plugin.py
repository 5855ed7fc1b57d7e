"""A user processor that keeps every byte it allocates, each page touched: what the worker
memory cap (RLIMIT_DATA) and a memory cgroup's limit are for."""

from __future__ import annotations

HOARD: list[bytes] = []


def hoard(line: str) -> str:
    while True:  # 32 MiB at a time, written (resident), until something says no
        HOARD.append(b"x" * (32 << 20))
