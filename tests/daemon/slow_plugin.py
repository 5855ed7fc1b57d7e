"""A user processor that is slow on purpose: keeps a file in flight long enough to act on."""

from __future__ import annotations

import time


def slow(line: str) -> str:
    time.sleep(0.01)
    return line


def die_at_start() -> None:
    """A worker initializer that kills its process: a worker that can never start."""
    import os

    os._exit(3)
