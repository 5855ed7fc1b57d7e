"""A requests-per-second limit shared by every process on the machine calling one host.

The state is one 8-byte float in a small file under the system temp directory (one
directory per user), named by the host and port: the monotonic time of the next free
slot. Taking a slot locks the file (`fcntl.flock`), reads that time, moves it on by
`1 / rate` and unlocks; the caller then sleeps until its slot. So every worker process
of the daemon, and every thread of each, draws from the same schedule without knowing
how many others there are. The monotonic
clock (CLOCK_MONOTONIC) is system-wide on Linux and macOS, so the times compare across
processes. Requests are spaced evenly: there is no burst above the rate.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import tempfile
import threading
import time
from pathlib import Path

_SLOT = struct.Struct("d")


def state_path(host: str) -> Path:
    """Where the shared schedule of calls to `host` (with its port, if any) lives."""
    key = hashlib.sha256(host.encode()).hexdigest()[:16]
    # per user: another user's directory in a shared /tmp would not be ours to write
    return Path(tempfile.gettempdir()) / f"folderd-rate-{os.getuid()}" / f"{key}.slot"


class SharedRate:
    """At most `rate_per_s` slots a second, summed over every holder of the same path."""

    def __init__(self, path: Path, rate_per_s: float) -> None:
        self.interval = 1.0 / rate_per_s
        # no honest schedule reaches further ahead than this many waiters' slots
        self.horizon = 60.0 + 4096 * self.interval
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        # flock excludes other open files, not other threads sharing this one
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Take the next free slot and sleep until it comes; returns the seconds slept."""
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(self._fd, _SLOT.size, 0)
                now = time.monotonic()
                slot = _SLOT.unpack(raw)[0] if len(raw) == _SLOT.size else now
                if slot < now or slot > now + self.horizon:  # idle, or left before a reboot
                    slot = now
                os.pwrite(self._fd, _SLOT.pack(slot + self.interval), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return delay

    def close(self) -> None:
        os.close(self._fd)
