"""Bounds on the dashboard's connections, so idle and slow clients cannot take every file
descriptor of the daemon (and with them `/health`).

uvicorn bounds neither: `timeout_keep_alive` runs only between requests and is reset by
every byte received, so a client that never finishes its request head keeps its socket
for ever; `limit_concurrency` answers 503 to new *requests* once that many connections
are open, idle ones included, so a flood of half-sent connections would turn `/health`
into 503s while every descriptor stays taken. So uvicorn's h11 protocol is extended with:

* a deadline: a connection must complete a request head within `request_timeout_s` of
  opening, and of the end of its previous response, or it is closed;
* a cap: when `limit` connections are open, a new one closes the one that has been idle
  (no request in flight) the longest: a monitor's fresh connection sends its request at
  once and is answered, while a flood's connections, idle from their first byte, go
  first. When every connection is busy, the new one is answered 503 once its request head
  is in (closing it at once would make the kernel reset it, losing the answer), with a
  deadline of its own; at most `OVERFLOW` are kept waiting for that, the rest are closed.

Closing is folded in the log (`dashboard.digest`): one line per kind and interval with a
count, however many connections a flood costs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from dashboard.digest import Digest

log = structlog.get_logger(__name__)

OVERFLOW = 32  # connections kept beyond the cap only to be told 503
OVERFLOW_TIMEOUT_S = 1.0


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": b"every dashboard connection is in use\n"})


class ConnectionGuard:
    """The open connections of one server, idle ones in the order they became idle."""

    def __init__(self, limit: int, request_timeout_s: float, digest: Digest) -> None:
        self.limit = limit
        self.request_timeout_s = request_timeout_s
        self.digest = digest
        self._open: set[GuardedH11Protocol] = set()
        self._idle: dict[GuardedH11Protocol, None] = {}  # insertion order: longest idle first
        self._overflow: set[GuardedH11Protocol] = set()

    def admit(self, conn: GuardedH11Protocol) -> bool:
        """Count `conn` in, making room if needed; False when every open one is busy."""
        if len(self._open) >= self.limit:
            oldest = next(iter(self._idle), None)
            if oldest is None:
                self.digest.log(log, "warning", "connection_refused", limit=self.limit)
                return False
            self.digest.log(log, "warning", "connection_evicted", limit=self.limit)
            oldest.close()
        self._open.add(conn)
        self._idle[conn] = None
        return True

    def overflow(self, conn: GuardedH11Protocol) -> bool:
        """Keep a refused `conn` to answer it 503, if there is a place for that."""
        if len(self._overflow) >= OVERFLOW:
            return False
        self._overflow.add(conn)
        return True

    def busy(self, conn: GuardedH11Protocol) -> None:
        self._idle.pop(conn, None)

    def idle(self, conn: GuardedH11Protocol) -> None:
        if conn in self._open:
            self._idle.pop(conn, None)
            self._idle[conn] = None

    def closed(self, conn: GuardedH11Protocol) -> None:
        self._open.discard(conn)
        self._idle.pop(conn, None)
        self._overflow.discard(conn)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under a `ConnectionGuard` (see `protocol_for`)."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.guard.admit(self):
            self._arm(self.guard.request_timeout_s)
        elif self.guard.overflow(self):
            self.app = _busy  # uvicorn runs it for the request, then closes (connection: close)
            self._arm(OVERFLOW_TIMEOUT_S)
        else:
            self.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.closed(self)
        super().connection_lost(exc)

    def close(self) -> None:
        """Close the connection now; the guard no longer counts it."""
        self._disarm()
        self.guard.closed(self)
        self.transport.close()

    def _follow(self) -> None:
        """Track whether a request is in flight: busy connections have no deadline and
        are never evicted; one that turns idle goes to the back of the line."""
        busy = self.cycle is not None and not self.cycle.response_complete
        if busy == self._busy:
            return
        self._busy = busy
        if busy:
            self._disarm()
            self.guard.busy(self)
        else:
            self.guard.idle(self)
            self._arm(self.guard.request_timeout_s)

    def _arm(self, timeout_s: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self._busy and not self.transport.is_closing():
            self.guard.digest.log(log, "info", "connection_timed_out")
            self.close()


def protocol_for(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """The protocol class to give `uvicorn.Config(http=...)`: uvicorn instantiates it
    itself, so the guard travels as a class attribute of a subclass made for it."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})
