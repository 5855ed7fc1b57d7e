"""The systemd notify protocol, spoken directly over `NOTIFY_SOCKET` with the stdlib.

systemd starts a `Type=notify` service with `NOTIFY_SOCKET` naming a unix datagram socket
(a path, or an abstract name written with a leading `@`). The service sends newline-separated
`KEY=VALUE` assignments to it: `READY=1` once it serves, `STATUS=` for `systemctl status`,
`WATCHDOG=1` at least every `WATCHDOG_USEC` or it is restarted, `RELOADING=1` and
`STOPPING=1` around reloads and shutdown. See sd_notify(3).

Without `NOTIFY_SOCKET` (run by hand, in Docker, in tests) every method is a no-op, so the
daemon calls them unconditionally. Sending never raises: a notification systemd did not get
must not take the daemon down with it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


def _address(raw: str) -> str | None:
    """The socket address for `NOTIFY_SOCKET`, or None when it is not one we can use."""
    if raw.startswith("@") and len(raw) > 1:
        return "\0" + raw[1:]  # Linux abstract namespace
    if raw.startswith("/"):
        return raw
    return None  # e.g. `vsock:` addresses (VMs): not for a daemon like this one


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half of `WATCHDOG_USEC` in seconds, as sd_watchdog_enabled(3) recommends, or None."""
    raw_usec = environ.get("WATCHDOG_USEC")
    if not raw_usec:
        return None
    raw_pid = environ.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None  # the watchdog is meant for another process (our parent, say)
        except ValueError:
            log.warning("watchdog_pid_invalid", value=raw_pid)
            return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("watchdog_usec_invalid", value=raw_usec)
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


class SystemdNotifier:
    """Sends state changes to systemd; does nothing when systemd did not ask for them."""

    def __init__(self, address: str | None = None, watchdog_interval: float | None = None):
        self.address = address
        self.enabled = address is not None
        self.watchdog_interval = watchdog_interval if self.enabled else None
        self._failing = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        """Build from `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` in `environ`."""
        raw = environ.get("NOTIFY_SOCKET", "")
        if not raw:
            return cls()
        address = _address(raw)
        if address is None:
            log.warning("notify_socket_unsupported", notify_socket=raw)
            return cls()
        return cls(address, _watchdog_interval(environ))

    def ready(self, status: str | None = None) -> None:
        """Tell systemd the service is up (recovery done, watcher and dashboard serving)."""
        self._send("READY=1", status)

    def status(self, text: str) -> None:
        """Set the one-line status `systemctl status folderd` shows."""
        self._send(None, text)

    def watchdog(self) -> None:
        """Keep-alive: call from the main loop every `watchdog_interval` seconds."""
        if self.watchdog_interval is not None:
            self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """Announce a reload (SIGHUP); send `ready()` again when it is done.

        `MONOTONIC_USEC` is required by `Type=notify-reload` to match this reload with the
        READY=1 that ends it.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", None, f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Announce a shutdown, so systemd does not take the silence that follows for a hang."""
        self._send("STOPPING=1")

    def _send(self, state: str | None, status: str | None = None, *extra: str) -> None:
        if self.address is None:
            return
        lines = [line for line in (state, *extra) if line]
        if status is not None:
            # One message is newline-separated assignments: a newline would start a new one.
            lines.append("STATUS=" + " ".join(status.splitlines()))
        message = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            if not self._failing:  # once per run of failures, not once per tick
                log.warning(
                    "notify_failed",
                    notify_socket=self.address.replace("\0", "@"),
                    message=lines[0].split("=")[0],
                    error=str(exc),
                )
            self._failing = True
            return
        if self._failing:
            log.info("notify_recovered", notify_socket=self.address.replace("\0", "@"))
        self._failing = False
