"""Times in query parameters and forms: what the Files, Errors and History pages accept
and what their date-time inputs show."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any


def moment(key: str, raw: Any) -> float | None:
    """Seconds since the epoch, or an ISO date and time (the server's local time unless it
    names a zone), or nothing; ValueError (naming `key`) for anything else."""
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        try:
            value = datetime.fromisoformat(str(raw)).astimezone().timestamp()
        except ValueError:
            value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{key}: expected a date and time like 2024-01-05T10:00, or "
                         f"seconds since the epoch, got {raw!r}")  # fmt: skip
    return value


def local_input(ts: float) -> str:
    """`ts` as a datetime-local input shows it (the server's local time, to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))
