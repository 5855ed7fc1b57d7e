"""The machine as the dashboard shows it (psutil): CPU and memory of the daemon and its
workers, the daemon's open files, and disk free for watch_dir and results.

Sampled in the background every few seconds, never per request: walking the
children and their /proc entries costs milliseconds a page view should not pay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil


def disk_free(path: Path) -> dict[str, Any]:
    """statvfs of `path`'s filesystem (microseconds: fine per request)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return {"path": str(path), "error": exc.strerror or str(exc)}
    return {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}


class SystemSampler:
    def __init__(self, watch_dir: Path, results_dir: Path) -> None:
        self._dirs = {"watch_dir": watch_dir, "results": results_dir}
        self._me = psutil.Process(os.getpid())
        self._procs: dict[int, psutil.Process] = {}
        self.last: dict[str, Any] = {"sampled_at": None}
        self._me.cpu_percent(None)

    def sample(self) -> dict[str, Any]:
        procs = [self._me]
        with contextlib.suppress(psutil.Error):
            for child in self._me.children(recursive=True):
                procs.append(self._procs.setdefault(child.pid, child))
        alive = {p.pid for p in procs}
        self._procs = {pid: p for pid, p in self._procs.items() if pid in alive}
        cpu = 0.0
        rss = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                cpu += p.cpu_percent(None)
                rss += p.memory_info().rss
        try:
            open_files = self._me.num_fds()
        except psutil.Error:
            open_files = None
        self.last = {
            "sampled_at": time.time(),
            "cpu_percent": round(cpu, 1),
            "cpu_count": psutil.cpu_count() or 1,
            "memory_rss_bytes": rss,
            "daemon_rss_bytes": self._rss(self._me),
            "processes": len(procs),
            "open_files": open_files,
            "disk": {name: disk_free(path) for name, path in self._dirs.items()},
        }
        return self.last

    @staticmethod
    def _rss(p: psutil.Process) -> int | None:
        try:
            return p.memory_info().rss
        except psutil.Error:
            return None
