"""The daemon tells others (the dashboard) what happened by publishing events here.

Subscribers are called synchronously on the daemon's thread and must be quick (the
dashboard's callback only hands the event to its own event loop). A subscriber that raises
is logged and dropped from that event, never allowed to stop the daemon.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Subscriber = Callable[[dict[str, Any]], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

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
        event = {"kind": kind, "ts": time.time(), **data}
        for callback in subscribers:
            try:
                callback(event)
            except Exception as exc:
                log.warning("event_subscriber_failed", kind=kind, error=str(exc))
