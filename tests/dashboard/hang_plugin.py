"""A user processor that never returns: what the Preview's time limit is for."""

from __future__ import annotations

import time


def hang(line: str) -> str:
    while True:
        time.sleep(0.05)
