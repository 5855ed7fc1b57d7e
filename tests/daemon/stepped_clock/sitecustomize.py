"""Put on PYTHONPATH, this steps the wall clock (`time.time`) of every Python process
started with it an hour back once the file named by TEST_WALL_CLOCK_STEP exists, as
NTP or a VM restore steps CLOCK_REALTIME; the monotonic clock goes on as it does. For a
real daemon and its spawned workers (each a new interpreter: this runs in each)."""

from __future__ import annotations

import os
import time

STEP_S = 3600.0
_FLAG = os.environ.get("TEST_WALL_CLOCK_STEP")

if _FLAG:
    _real = time.time

    def _stepped() -> float:
        return _real() - (STEP_S if os.path.exists(_FLAG) else 0.0)

    time.time = _stepped
