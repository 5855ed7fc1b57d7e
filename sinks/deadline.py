"""Total deadlines for the sinks' remote calls: a watchdog that cuts a call's connection
when its time is up.

A driver's timeouts bound one network operation (a connect, one read), not a call: a
server that answers one byte a second, or that stops reading an upload, never trips them,
and the call waits for as long as it is fed. `WATCHDOG.arm(seconds, cut)` runs `cut` from
the watchdog's thread unless the alarm is cancelled (or put off, `extend`) before then;
`cut` shuts the call's sockets down (`shutdown(SHUT_RDWR)`), the one way to wake a read or
write blocked in another thread: it returns at once with an error, and the caller, seeing
`alarm.fired`, reports the sink unavailable. A cancelled alarm never fires: `cut` runs
under the watchdog's lock, which cancelling takes.

`Sockets` finds the sockets of one call made through `http.client` (botocore's urllib3):
while it is the thread's current call, an audit hook (`sys.addaudithook`, installed once
per process) notes every socket the thread creates (`socket.__new__`: a new connection,
its TLS socket) and every connection it sends on (`http.client.send`: a kept-alive one).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class Alarm:
    __slots__ = ("at", "cancelled", "cut", "fired")

    def __init__(self, at: float, cut: Callable[[], None]) -> None:
        self.at = at
        self.cut = cut
        self.fired = False
        self.cancelled = False


class Watchdog:
    """One thread per process (started on first use, again in a forked child) that fires
    the alarms whose time has come."""

    def __init__(self) -> None:
        self._pid = -1
        self._starting = threading.Lock()

    def _start(self) -> None:
        with self._starting:
            if self._pid == os.getpid():  # another thread was first
                return
            self._cond = threading.Condition()
            self._heap: list[tuple[float, int, Alarm]] = []
            self._seq = itertools.count()
            threading.Thread(target=self._run, name="sink-watchdog", daemon=True).start()
            self._pid = os.getpid()

    def arm(self, seconds: float, cut: Callable[[], None]) -> Alarm:
        if self._pid != os.getpid():
            self._start()
        alarm = Alarm(time.monotonic() + seconds, cut)
        with self._cond:
            heapq.heappush(self._heap, (alarm.at, next(self._seq), alarm))
            if self._heap[0][2] is alarm:  # sooner than all the others: wake up for it
                self._cond.notify()
        return alarm

    def extend(self, alarm: Alarm, seconds: float) -> None:
        """`alarm` fires `seconds` from now instead (a call made progress)."""
        with self._cond:
            alarm.at = time.monotonic() + seconds

    def cancel(self, alarm: Alarm) -> None:
        """After this returns, `alarm` does not fire (it may have already)."""
        with self._cond:
            alarm.cancelled = True

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, alarm = self._heap[0]
                if alarm.cancelled:
                    heapq.heappop(self._heap)
                    continue
                if alarm.at > at:  # put off since it was filed: file it again
                    heapq.heapreplace(self._heap, (alarm.at, next(self._seq), alarm))
                    continue
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                alarm.fired = True
                with contextlib.suppress(Exception):  # a cut is best effort: never stop here
                    alarm.cut()


WATCHDOG = Watchdog()


def shut(sock: socket.socket | None) -> None:
    """Shut `sock` down both ways (a closed or detached one: nothing to do)."""
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_local = threading.local()  # .sockets: the thread's current `Sockets`, or None
_hooked = False
_hook_lock = threading.Lock()
_EVENTS = frozenset({"socket.__new__", "http.client.send"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _EVENTS:
        current = getattr(_local, "sockets", None)
        if current is not None:
            current.note(args[0])


class Sockets:
    """The sockets this thread uses inside `watching()`; `cut()` shuts them all down."""

    def __init__(self) -> None:
        global _hooked
        with _hook_lock:
            if not _hooked:
                sys.addaudithook(_audit)
                _hooked = True
        self._lock = threading.Lock()
        self._seen: list[Any] = []  # sockets, and http.client connections (their .sock)

    def note(self, obj: Any) -> None:
        with self._lock:
            self._seen.append(obj)

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()

    def cut(self) -> None:
        with self._lock:
            seen = list(self._seen)
        for obj in seen:
            shut(obj if isinstance(obj, socket.socket) else getattr(obj, "sock", None))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Note the sockets this thread creates or sends on in the block."""
        before = getattr(_local, "sockets", None)
        _local.sockets = self
        try:
            yield
        finally:
            _local.sockets = before
