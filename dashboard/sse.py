"""`/events`: the one Server-Sent-Events stream every page listens to.

A client gets the current status at once, then the hub's batches as they come, and a
comment line every `PING_S` so a vanished client is noticed (the send fails) and proxies
keep the connection open. The stream ends when the dashboard stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dashboard.hub import sse

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from dashboard.context import Dashboard
    from dashboard.hub import Hub

PING_S = 15.0
RETRY_MS = 2000


async def events(request: Request) -> Response:
    dash: Dashboard = request.app.state.dashboard
    hub = dash.hub
    q = hub.subscribe()
    first = f"retry: {RETRY_MS}\n\n".encode() + sse(hub.status_message())

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield first
            while True:
                try:
                    data = await asyncio.wait_for(q.get(), PING_S)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if data is None:
                    return
                yield data
        finally:
            hub.unsubscribe(q)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class SeenEvents:
    """Notes, as each request starts, the number of the hub's last batch of file events: a
    page rendered from what is read after that shows at least what those batches said, so
    its live.js, told the number, knows whether it missed one before it connected."""

    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["events_seq"] = self.hub.seq
        await self.app(scope, receive, send)
