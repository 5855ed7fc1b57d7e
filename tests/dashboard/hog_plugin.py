"""A user processor that hoards memory: what the Preview's memory cap is for."""

from __future__ import annotations

HOARD: list[bytearray] = []


def hog(line: str) -> str:
    while True:  # 64 MiB at a time until the cap says no
        HOARD.append(bytearray(64 << 20))
