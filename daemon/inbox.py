"""The loop's inbox: what other threads tell the loop, and a pipe it can `wait()` on.

The watcher's `FileChange`s, a `Rescan` after an inotify overflow, and the dashboard's
`Call`s arrive here from their own threads; the loop drains them all at once, on its own
thread, beside the worker pipes it waits on (`multiprocessing.connection.wait`).
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from daemon.watcher import FileChange


@dataclass(frozen=True, slots=True)
class Rescan:
    """Scan unprocessed/ now: the watcher may have missed events (an inotify overflow)."""


@dataclass(frozen=True, slots=True)
class Call:
    """Run `fn` on the loop's thread and put its result (or exception) in `future`."""

    fn: Callable[[], Any]
    future: Future[Any]

    def run(self) -> None:
        if self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(self.fn())
            except Exception as exc:
                self.future.set_exception(exc)

    def refuse(self, exc: Exception) -> None:
        if self.future.set_running_or_notify_cancel():
            self.future.set_exception(exc)


Message = FileChange | Rescan | Call


class Inbox:
    """A queue the loop can `wait()` on together with the worker pipes."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._armed = False  # a wake-up byte is on its way: later puts need not write one

    def fileno(self) -> int:
        return self._r

    def put(self, item: Message) -> None:
        self._q.put(item)
        if not self._armed:  # a burst of watcher events costs one write, not one each
            self._armed = True
            self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._w, b"!")

    def drain(self) -> list[Message]:
        self._armed = False  # before reading the queue: a put after this point wakes us
        with contextlib.suppress(BlockingIOError):
            while os.read(self._r, 4096):
                pass
        items = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(self._q.get_nowait())
        return items

    def refuse_calls(self, exc: Exception) -> None:
        """While stopping: answer pending calls with `exc` instead of leaving them hanging
        (and drop everything else)."""
        for msg in self.drain():
            if isinstance(msg, Call):
                msg.refuse(exc)

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)
