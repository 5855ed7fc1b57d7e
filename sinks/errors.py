"""The exceptions of the sinks package: one root, the two kinds the daemon tells apart."""

from __future__ import annotations

from typing import Any


class SinkError(Exception):
    """Something went wrong delivering to a sink; `sink` names it (never a password)."""

    def __init__(self, sink: str, message: str) -> None:
        super().__init__(f"{sink}: {message}")
        self.sink = sink
        self.message = message


class SinkUnavailable(SinkError):
    """The sink cannot take deliveries now: unreachable, credentials refused, timed out, a
    table or bucket missing. The machine's fault, never the file's: the file waits."""


class SinkDataError(SinkError):
    """A record can never be delivered (it violates its column's type): the file fails."""

    def __init__(
        self,
        sink: str,
        message: str,
        line: int | None,
        column: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(sink, message)
        self.line = line
        self.column = column
        self.value = value

    def to_dict(self) -> dict[str, Any]:
        """The summary's `error` for the file this record came from."""
        return {
            "type": "SinkTypeError",
            "message": str(self),
            "sink": self.sink,
            "line": self.line,
            "column": self.column,
            "value": repr(self.value)[:200],
        }
