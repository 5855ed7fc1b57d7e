"""The three kinds of error, told apart in one place, and the pause the third one causes.

*Data* errors (the file can never succeed: undecodable, a processor error, a record that
violates its sink column's type) fail the file at once. *Transient* errors (this file, this
time: it vanished, EBUSY, its worker died) retry it with back-off up to `max_attempts`.
*Environment* errors (the machine: a full or read-only disk, EIO, a quota, free space under
the floor, a sink unreachable or refusing its credentials) are no file's fault: the attempt
is not counted, the file waits, and claiming pauses until a probe finds the condition cleared,
probing with back-off (1 s, doubling, up to 30 s). Nothing fails because of the machine.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

from daemon.errors import DaemonError
from daemon.states import Folders
from sinks import SinkUnavailable

log = structlog.get_logger(__name__)

PROBE_FIRST_S = 1.0
PROBE_MAX_S = 30.0

# errno -> the cause a pause names (its label in /metrics)
ENVIRONMENT_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "quota",
    errno.EROFS: "read_only",
    errno.EIO: "io_error",
}


class Fault(StrEnum):
    DATA = "data"  # the file can never succeed: failed/ at once
    TRANSIENT = "transient"  # this file, this time: retried with back-off
    ENVIRONMENT = "environment"  # the machine: not counted; claiming pauses


def classify(exc: BaseException) -> Fault:
    """The kind of an error raised while reading, processing, writing or moving a file
    (a processor's own errors are data errors and never reach here)."""
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return Fault.ENVIRONMENT
    # the folders span filesystems now; a sink is unreachable, refuses us, times out
    if isinstance(exc, DaemonError | SinkUnavailable):
        return Fault.ENVIRONMENT
    return Fault.TRANSIENT


def cause_of(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return ENVIRONMENT_ERRNOS[exc.errno]
    if isinstance(exc, SinkUnavailable):  # its message names the sink, never a password
        return "sink_unavailable"
    return "folder_unusable"


@dataclass(frozen=True, slots=True)
class PauseReason:
    cause: str  # a short label: disk_low, disk_full, read_only, io_error, quota, …
    message: str  # what an operator reads on /health and the dashboard


def probe(folders: Folders, min_free_bytes: int) -> PauseReason | None:
    """Why files cannot be processed now, or None: every folder usable (created, written,
    on one filesystem) and each filesystem above the free-space floor."""
    try:
        folders.create()
    except DaemonError as exc:  # its context is the OSError that says which kind
        return PauseReason(cause_of(exc.__context__ or exc), str(exc))
    return below_floor(folders, min_free_bytes)


def below_floor(folders: Folders, min_free_bytes: int) -> PauseReason | None:
    """The free-space floor alone (two statvfs calls: cheap enough for every tick)."""
    for what, path in (("results", folders.results), ("watch_dir", folders.root)):
        try:
            st = os.statvfs(path)
        except OSError as exc:
            return PauseReason("folder_unusable", f"{what} {path}: {exc.strerror or exc}")
        free = st.f_bavail * st.f_frsize
        if free < min_free_bytes:
            return PauseReason(
                "disk_low",
                f"{what} disk has {free >> 20} MB free, below the --min-disk-free-mb floor "
                f"of {min_free_bytes >> 20} MB ({path})",
            )
    return None


class Pause:
    """Whether claiming is paused, why, and when to probe again (loop thread only)."""

    def __init__(self, first_s: float = PROBE_FIRST_S, max_s: float = PROBE_MAX_S) -> None:
        self.first_s = first_s  # the first probe's wait; it doubles up to max_s
        self.max_s = max_s
        self.reason: PauseReason | None = None
        self.since: float | None = None  # monotonic
        self.counts: dict[str, int] = {}  # pauses so far, by cause
        self._delay = first_s
        self._next_probe = 0.0
        self.on_pause: Callable[[str, str], None] | None = None  # (cause, reason): paused
        self.on_resume: Callable[[str, float], None] | None = None  # (cause, seconds paused)

    def __bool__(self) -> bool:
        return self.reason is not None

    def hold(self, reason: PauseReason, now: float) -> None:
        """Pause (or stay paused) for `reason`; the next probe backs off. Files that fail
        for the machine while the queue is paused (those in flight) leave the next probe
        where it is: the back-off grows with the probes, not with the files."""
        if self.reason is not None and now < self._next_probe:
            if reason != self.reason:
                log.warning("queue_pause_reason", cause=reason.cause, reason=reason.message)
                self.reason = reason
            return
        if self.reason is None:
            self.since = now
            self.counts[reason.cause] = self.counts.get(reason.cause, 0) + 1
            log.error("queue_paused", cause=reason.cause, reason=reason.message,
                      action="claiming paused, nothing failed; probing till it clears")  # fmt: skip
            if self.on_pause is not None:
                self.on_pause(reason.cause, reason.message)
        elif reason != self.reason:
            log.warning("queue_pause_reason", cause=reason.cause, reason=reason.message)
        self.reason = reason
        self._next_probe = now + self._delay
        self._delay = min(self._delay * 2, self.max_s)

    def check(self, folders: Folders, min_free_bytes: int, now: float) -> bool:
        """Once a tick: probe a paused queue when its back-off is due (True if that cleared
        it: claiming resumes, the back-off stays until a file succeeds); pause a running
        one whose free space fell below the floor."""
        if self.reason is None:
            if (low := below_floor(folders, min_free_bytes)) is not None:
                self.hold(low, now)
            return False
        if now < self._next_probe:
            return False
        reason = probe(folders, min_free_bytes)
        if reason is not None:
            self.hold(reason, now)
            return False
        paused_s = round(now - (self.since or now), 3)
        log.info("queue_resumed", cause=self.reason.cause, paused_s=paused_s)
        if self.on_resume is not None:
            self.on_resume(self.reason.cause, paused_s)
        self.reason = self.since = None
        return True

    def succeeded(self) -> None:
        """A file went through: the next pause probes quickly again."""
        self._delay = self.first_s
