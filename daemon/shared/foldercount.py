"""Shared mode: the files in each folder of the shared watch_dir, counted off the loop.

Each instance's journal knows only its own files; what all instances together have in
unprocessed/, underprocess/, processed/ and failed/ only the shared filesystem knows. A
daemon thread walks those folders every few seconds (os.scandir, files only, hidden names
skipped as the claimer skips them: `.folderd*` temps, rsync's dot-files) and keeps the
last count for the dashboard. Peers rename files all the time: an entry gone mid-walk is
simply not counted.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from daemon.states import FOLDER_STATES, Folders

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FolderCount:
    """Files per folder (by folder name), as of `at` (monotonic)."""

    files: dict[str, int]
    at: float
    took_s: float


def count_files(top: Path | str) -> int:
    """Non-directory entries below `top`, hidden names (and what is under them) skipped."""
    n = 0
    root = os.fspath(top)
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            continue
                    except FileNotFoundError:
                        continue
                    n += 1
        except (FileNotFoundError, NotADirectoryError):
            continue  # renamed or removed by a peer between listing and opening
        except OSError:
            if path == root:
                raise  # the folder itself: the caller keeps its last count and says why
            continue  # a sub-folder it may not read (a user's, mode 700): the rest counts
    return n


def count_folders(folders: Folders) -> dict[str, int]:
    return {s.value: count_files(folders.root / s.value) for s in FOLDER_STATES}


class FolderCounter:
    """Counts the shared folders every `interval_s` in its own thread; `last` is the latest."""

    def __init__(self, folders: Folders, interval_s: float) -> None:
        self.folders = folders
        self.interval_s = interval_s
        self.last: FolderCount | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="folder-counter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                files = count_folders(self.folders)
            except OSError as exc:  # a folder unreadable for a moment: the last count stays
                log.warning("folder_count_failed", error=str(exc), action="retried")
            else:
                now = time.monotonic()
                self.last = FolderCount(files, now, round(now - began, 3))
            # a processed/ of millions of files takes seconds to walk: count it at most a
            # tenth of the time, so the walk never takes more than 10% of a core
            self._stop.wait(max(self.interval_s, 9 * (time.monotonic() - began)))

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("folder_counter_stuck", timeout_s=timeout_s,
                            action="left behind (daemon thread)")  # fmt: skip
