"""Daemon events in, live updates out: the one place the dashboard listens to the daemon.

The daemon calls `on_event` on its own thread for every event; that only appends to a
deque (no lock, no syscall), so a 10,000-file burst costs the daemon almost nothing. The
hub's task on the dashboard's event loop drains the deque twice a second, feeds
`Stats`, and sends every Server-Sent-Events client one batch: file events (at most
`MAX_FILE_EVENTS` per batch, progress coalesced to the latest per file), a status
message with the queue counts, and the pipeline graph's live rates when they changed. In
the background it also refreshes the per-state totals from the journal and samples the
machine, so requests never pay for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from dashboard import graph, queries

if TYPE_CHECKING:
    from daemon.control import DaemonAPI
    from dashboard.queries import JournalReader
    from dashboard.stats import Stats
    from dashboard.system import SystemSampler

log = structlog.get_logger(__name__)

DRAIN_S = 0.5
COUNTS_EVERY_S = 2.0  # per-state totals from the journal, when files moved
COUNTS_IDLE_S = 10.0  # ... and at least this often (someone may `mv` by hand)
SAMPLE_EVERY_S = 5.0
MAX_FILE_EVENTS = 100
CLIENT_QUEUE = 256
_FILE_KINDS = {"file_queued", "file_started", "file_processed", "file_failed", "file_retry"}


def sse(message: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(message) + b"\n\n"


class Hub:
    def __init__(
        self, api: DaemonAPI, stats: Stats, reader: JournalReader, sampler: SystemSampler
    ) -> None:
        self.api = api
        self.stats = stats
        self.reader = reader
        self.sampler = sampler
        self.state_counts: dict[str, int] = dict.fromkeys(queries.STATES, 0)
        self._pending: deque[dict[str, Any]] = deque(maxlen=500_000)
        self._clients: set[asyncio.Queue[bytes | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._counts_dirty = True
        self._counts_at = 0.0
        self._sampled_at = 0.0
        # Numbers the batches that carry file events. A page is rendered with the number it
        # had seen; a client that finds a gap (it connected after a batch, or a batch was
        # dropped for a stalled client) refreshes what it shows instead of missing a change.
        self.seq = 0
        self._rates_sent: dict[str, Any] | None = None

    # -- the daemon's side -----------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        """Called on the daemon's thread: must stay O(1)."""
        self._pending.append(event)

    # -- the event loop's side ---------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        since = time.time() - 3600
        try:
            rows = await asyncio.to_thread(lambda: queries.history(self.reader.conn(), since))
            self.stats.seed(rows)
        except sqlite3.Error as exc:
            log.warning("dashboard_seed_failed", error=str(exc))
        await self._refresh(time.monotonic())

    async def run(self) -> None:
        while not self._closed:
            await asyncio.sleep(DRAIN_S)
            try:
                self.drain()
                await self._refresh(time.monotonic())
            except Exception as exc:  # never let one bad batch end live updates
                log.exception("dashboard_update_failed", error=str(exc))

    def drain(self) -> None:
        events = []
        pending = self._pending
        while pending:
            events.append(pending.popleft())
        if not events:
            return
        self.stats.apply(events)
        file_events: list[dict[str, Any]] = []
        progress: dict[str, dict[str, Any]] = {}
        status = False
        for ev in events:
            kind = ev["kind"]
            if kind in _FILE_KINDS:
                file_events.append(ev)
                self._counts_dirty = True
            elif kind == "file_progress":
                progress[ev["uid"]] = ev
            elif kind == "status":
                status = True
            elif kind == "config_reloaded":
                file_events.append(ev)
        if file_events:
            self.seq += 1
        if not self._clients:
            return
        skipped = max(0, len(file_events) - MAX_FILE_EVENTS)
        batch = [_slim(ev) for ev in file_events[-MAX_FILE_EVENTS:]]
        if skipped:
            batch.insert(0, {"kind": "burst", "skipped": skipped})
        if file_events:
            batch.insert(0, {"kind": "seq", "seq": self.seq})
        batch += [_slim(ev) for ev in progress.values()]
        if status:  # the daemon's once-a-second tick: counts, progress bars, rates follow it
            batch.append(self.status_message())
            rates = self.rates_message()
            if rates != self._rates_sent:  # idle: the zeros once, then nothing
                self._rates_sent = rates
                batch.append(rates)
        self.broadcast(batch)

    def status_message(self) -> dict[str, Any]:
        st = self.api.status()
        return {
            "kind": "status",
            "counts": st["counts"],
            "states": self.state_counts,
            "oldest_queued_age_s": st["oldest_queued_age_s"],
            "in_flight": st["in_flight"],
            "seq": self.seq,
        }

    def rates_message(self) -> dict[str, Any]:
        """The pipeline graph's labels and widths now (`graph.live`)."""
        g = graph.build(self.api.status()["pipeline"])
        live = graph.live(g, self.stats.rates.per_second(), self.stats.rates.errors)
        return {"kind": "rates", **live}

    def broadcast(self, batch: list[dict[str, Any]]) -> None:
        if not batch:
            return
        data = b"".join(sse(m) for m in batch)
        for q in self._clients:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled client misses a batch
                q.put_nowait(data)

    async def _refresh(self, now: float) -> None:
        due = now - self._counts_at
        if (self._counts_dirty and due >= COUNTS_EVERY_S) or due >= COUNTS_IDLE_S:
            self._counts_dirty = False
            self._counts_at = now
            try:
                self.state_counts = await asyncio.to_thread(
                    lambda: queries.state_counts(self.reader.conn())
                )
            except sqlite3.Error as exc:
                log.warning("dashboard_counts_failed", error=str(exc))
        if now - self._sampled_at >= SAMPLE_EVERY_S:
            self._sampled_at = now
            await asyncio.to_thread(self.sampler.sample)

    # -- SSE clients ---------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[bytes | None]:
        q: asyncio.Queue[bytes | None] = asyncio.Queue(CLIENT_QUEUE)
        if self._closed:
            q.put_nowait(None)
        self._clients.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes | None]) -> None:
        self._clients.discard(q)

    def close(self) -> None:
        """End every live stream (any thread): uvicorn waits for open responses to end."""
        self._closed = True
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._end_streams)

    def _end_streams(self) -> None:
        for q in self._clients:
            while True:
                try:
                    q.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    q.get_nowait()


def _slim(ev: dict[str, Any]) -> dict[str, Any]:
    """A file event without the bulky per-node stats (the pipeline page gets rates)."""
    return {k: v for k, v in ev.items() if k not in ("processors", "tags", "mono")}
