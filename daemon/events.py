"""The daemon tells others (the dashboard) what happened by publishing events here.

Subscribers are called synchronously on the daemon's thread and must be quick (the
dashboard's callback only hands the event to its own event loop). A subscriber that raises
is logged and dropped from that event, never allowed to stop the daemon.

The loop publishes what it does as it goes, but commits the journal at most every
`daemon.core.FLUSH_S`: it holds events (`hold()`) until it has committed (`release()`),
so no subscriber hears of a move before the journal (which the dashboard reads when an
event makes it refresh a page) says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from formats.names import shown

log = structlog.get_logger(__name__)

Subscriber = Callable[[dict[str, Any]], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._held: list[dict[str, Any]] | None = None

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Register `callback`; returns the function that unsubscribes it."""
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def publish(self, kind: str, **data: Any) -> None:
        subscribers = self._subscribers  # copy-on-write: safe to iterate without the lock
        if not subscribers:
            return
        if (path := data.get("path")) is not None:
            data["path"] = shown(path)  # events leave as JSON: names as the journal has them
        # ts: when, for people; mono: for measuring between events (never steps back)
        event = {"kind": kind, "ts": time.time(), "mono": time.monotonic(), **data}
        held = self._held
        if held is not None:
            held.append(event)
            return
        self._deliver(subscribers, event)

    def hold(self) -> None:
        """Hold the events published from now on until `release()`."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver the events held, in order, and stop holding."""
        held, self._held = self._held, None
        subscribers = self._subscribers
        for event in held or ():
            self._deliver(subscribers, event)

    @staticmethod
    def _deliver(subscribers: list[Subscriber], event: dict[str, Any]) -> None:
        for callback in subscribers:
            try:
                callback(event)
            except Exception as exc:
                log.warning("event_subscriber_failed", kind=event["kind"], error=str(exc))
