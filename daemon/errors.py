"""The one exception type of the daemon package: a condition the daemon cannot start or run in."""

from __future__ import annotations


class DaemonError(Exception):
    """Fatal for the run; `str()` is a complete message for the operator.

    `exit_code` is what main.py exits with (1: another daemon holds the lock, 2: bad setup).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
