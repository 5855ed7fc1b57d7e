"""Webhooks: one sender thread per `notify` target, taking its rows from the outbox.

A sender POSTs its target's notifications oldest first, one at a time, each attempt
within the target's `timeout_s` in all (connecting, sending, the answer's last byte:
`net.fetch`), a redirect followed only within the URL's origin and only if it keeps the
POST. A 2xx removes the row. A failure — no answer, a timeout, 408, 425, 429, a 5xx —
keeps it and the target waits `backoff_s`, doubled each failure up to `max_backoff_s`,
with ±50 % jitter (or what `Retry-After` says, within that cap) before trying again: a
receiver that is down gets one attempt per wait, not a storm. A notification its receiver
refuses (another 4xx, a redirect elsewhere, an answer over 1 MiB) is dropped after
REFUSED_TRIES refusals, so one it will never take does not hold the others forever.

Each sender reads and deletes with its own connection to the journal; rows only ever
become visible to it once the loop committed them with their move (`daemon.outbox`).
At shutdown the senders get until the shutdown timeout to empty their outbox; what is
left is sent at the next start.
"""

from __future__ import annotations

import contextlib
import functools
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from config.notify import NotifyTarget
from daemon.events import EventBus
from daemon.faults import Pause
from daemon.journal import Journal
from daemon.outbox import Outbox, TargetCounts, file_key, sign
from daemon.outcomes import Outcomes
from daemon.reports import RunReport
from daemon.schema import connect
from daemon.snapshot import VERSION
from daemon.summary import Summary
from net.fetch import NoAnswer, client, fetch, retry_after

log = structlog.get_logger(__name__)

IDLE_S = 1.0  # a sender with nothing to send looks again this often (or when woken)
REFUSED_TRIES = 5
MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class _Bounds:
    timeout_s: float
    max_response_bytes: int = MAX_ANSWER_BYTES
    redirect_hosts: frozenset[tuple[str, int | None]] = frozenset()


@functools.cache
def _ssl() -> Any:
    return httpx.create_ssl_context()


class Sender(threading.Thread):
    """Sends one target's notifications (see the module's docstring)."""

    def __init__(self, target: NotifyTarget, outbox: Outbox, journal: Journal) -> None:
        super().__init__(name=f"folderd-notify-{target.name}", daemon=True)
        self.target = target
        self._outbox = outbox
        self._journal = journal
        self._wake = threading.Event()
        self._stop_at: float | None = None  # monotonic: stop once empty, or at this instant
        self._failures = 0
        self._next_try = 0.0  # monotonic
        self._conn: sqlite3.Connection | None = None  # this thread's, to the journal
        self._generation = -1

    @property
    def _counts(self) -> TargetCounts:
        return self._outbox.counts[self.target.name]

    def wake(self) -> None:
        self._wake.set()

    def stop(self, grace_s: float) -> None:
        """Stop once its outbox is empty, or after `grace_s` at the latest."""
        self._stop_at = time.monotonic() + grace_s
        self._wake.set()

    def run(self) -> None:
        http = client(_ssl(), httpx.Limits(max_connections=1), self.target.timeout_s)
        try:
            while self._stop_at is None or time.monotonic() < self._stop_at:
                self._wake.clear()
                try:
                    if not self._turn(http):
                        return
                except Exception:  # a bug here must not end the sending for good
                    log.exception("notify_sender_error", target=self.target.name)
                    self._wake.wait(IDLE_S)
        finally:
            http.close()
            if self._conn is not None:
                self._conn.close()

    def _turn(self, http: httpx.Client) -> bool:
        """Send the oldest notification if it is due, or wait; False once stopped."""
        if self._conn is None or self._generation != self._journal.generation:
            if self._conn is not None:  # the journal was replaced: read the new one
                self._conn.close()
            self._conn, self._generation = connect(self._journal.path), self._journal.generation
            self._conn.isolation_level = None  # each delete its own, short, transaction
        try:
            row = self._conn.execute(
                "SELECT id, event, key, body, attempts, created FROM outbox"
                " WHERE target = ? ORDER BY id LIMIT 1",
                (self.target.name,),
            ).fetchone()
        except sqlite3.Error as exc:
            log.warning("outbox_unreadable", target=self.target.name, error=str(exc))
            self._wake.wait(IDLE_S)
            return True
        if row is None:
            with self._outbox.lock:
                self._counts.oldest = None
            if self._stop_at is not None:
                return False
            self._wake.wait(IDLE_S)
            return True
        with self._outbox.lock:
            self._counts.oldest = row[5]
        wait_s = self._next_try - time.monotonic()
        if wait_s > 0:
            if self._stop_at is not None:  # shutting down: not past the grace
                wait_s = min(wait_s, max(0.0, self._stop_at - time.monotonic()))
            self._wake.wait(wait_s)
            return True
        self._send(self._conn, http, *row[:5])
        return True

    def _send(self, conn: sqlite3.Connection, http: httpx.Client, row_id: int, event: str,
              key: str, body: bytes, attempts: int) -> None:  # fmt: skip
        t = self.target
        verdict, problem, wait = self._attempt(http, event, key, bytes(body))
        c = self._counts
        if verdict == "ok":
            self._remove(conn, row_id)
            with self._outbox.lock:
                c.sent += 1
                c.pending = max(0, c.pending - 1)
                c.last_ok = time.time()
            if self._failures:
                log.info("notify_recovered", target=t.name, failed_attempts=self._failures)
            self._failures, self._next_try = 0, 0.0
            log.debug("notification_sent", target=t.name, kind=event, id=key)
            return
        self._failures += 1
        delay = min(t.backoff_s * 2 ** (self._failures - 1), t.max_backoff_s)
        delay *= random.uniform(0.5, 1.5)
        if wait is not None:
            delay = max(delay, min(wait, t.max_backoff_s))
        self._next_try = time.monotonic() + delay
        with self._outbox.lock:
            c.failed_attempts += 1
            c.last_error, c.last_error_at = problem, time.time()
        attempts += 1
        if verdict == "refused" and attempts >= REFUSED_TRIES:
            self._remove(conn, row_id)
            with self._outbox.lock:
                c.dropped += 1
                c.pending = max(0, c.pending - 1)
            log.error("notification_refused", target=t.name, kind=event, id=key,
                      attempts=attempts, error=problem, action="dropped")  # fmt: skip
            return
        with contextlib.suppress(sqlite3.Error):
            conn.execute("UPDATE outbox SET attempts = ?, last_error = ? WHERE id = ?",
                         (attempts, problem, row_id))  # fmt: skip
        log.warning("notification_failed", target=t.name, kind=event, id=key,
                    attempt=attempts, error=problem, retry_in_s=round(delay, 3))  # fmt: skip

    def _remove(self, conn: sqlite3.Connection, row_id: int) -> None:
        try:
            conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        except sqlite3.Error as exc:  # it is sent again: at least once, never lost
            log.warning("outbox_delete_failed", target=self.target.name, error=str(exc))

    def _attempt(
        self, http: httpx.Client, event: str, key: str, body: bytes
    ) -> tuple[str, str | None, float | None]:
        """One POST: ("ok" | "retry" | "refused", why not, seconds the receiver asked to
        wait)."""
        t = self.target
        headers = {**t.headers, "Content-Type": "application/json",
                   "User-Agent": f"folderd/{VERSION}", "Folderd-Event": event,
                   "Folderd-Delivery": key, "Idempotency-Key": key}  # fmt: skip
        if t.secret:
            now = int(time.time())
            headers["Folderd-Signature"] = f"t={now},v1={sign(t.secret, now, body)}"
        try:
            answer = fetch(http, _Bounds(t.timeout_s), "POST", t.url, body, headers,
                           keep_method=True)  # fmt: skip
        except NoAnswer as exc:
            return ("retry" if exc.retry else "refused"), _scrub(exc.problem, t), None
        status = answer.status
        if 200 <= status < 300:
            return "ok", None, None
        if status in (408, 425, 429) or status >= 500:
            return "retry", f"HTTP {status}", retry_after(answer.retry_after)
        return "refused", f"HTTP {status}", None


def _scrub(text: str, target: NotifyTarget) -> str:
    for secret in target.secrets():
        text = text.replace(secret, "***")
    return text


class Webhooks:
    """The outbox and its senders, as the loop drives them."""

    def __init__(self, journal: Journal, instance: str | None, host: str) -> None:
        self.journal = journal
        self.outbox = Outbox(journal, instance, host)
        self._senders: dict[str, Sender] = {}
        self._started = False

    def attach(self, outcomes: Outcomes, pause: Pause, events: EventBus, report: RunReport) -> None:
        """Report every file finished, every pause and resume; send what a journal commit
        made durable as soon as the loop has committed it (its events come after)."""
        outcomes.on_done += [report.add, self.file_done]
        pause.on_pause, pause.on_resume = self.paused, self.resumed
        events.subscribe(self.wake)

    def use(self, targets: tuple[NotifyTarget, ...]) -> None:
        """The config's targets (at start, at every reload); senders follow once started."""
        self.outbox.use(targets)
        if self._started:
            self._restart()

    def start(self) -> None:
        """Start sending (after recovery: what it added is committed by then)."""
        self._started = True
        self._restart()

    def _restart(self) -> None:
        for name, sender in list(self._senders.items()):
            if self.outbox.targets.get(name) != sender.target:
                sender.stop(0.0)
                del self._senders[name]
        for name, target in self.outbox.targets.items():
            if name not in self._senders:
                self._senders[name] = sender = Sender(target, self.outbox, self.journal)
                sender.start()

    # -- the events (loop thread, before the journal flush that commits them) ----------
    def file_done(self, summary: Summary) -> None:
        """A file moved to processed/ or failed/ (or recovery found it moved)."""
        event = "file.processed" if summary.ok else "file.failed"
        if self.outbox.wanted(event):
            data = summary.to_json()
            self.outbox.add(event, {"summary": data}, file_key(event, data))

    def paused(self, cause: str, reason: str) -> None:
        self.outbox.add("queue.paused", {"pause": {"cause": cause, "reason": reason}})

    def resumed(self, cause: str, paused_s: float) -> None:
        self.outbox.add("queue.resumed", {"pause": {"cause": cause, "paused_s": paused_s}})

    def report(self, event: str, report: dict[str, Any], key: str | None = None) -> None:
        """A batch's or a drain's report (`batch.done`, `drain.done`)."""
        self.outbox.add(event, {"report": report}, key)

    def wake(self, _event: Any = None) -> None:
        """Something was committed: look at the outbox now (an EventBus subscriber)."""
        for sender in list(self._senders.values()):
            sender.wake()

    def close(self, grace_s: float) -> None:
        """Give the senders until `grace_s` to empty the outbox (committed by now); what
        they could not send stays in it, for the next start."""
        for sender in self._senders.values():
            sender.stop(grace_s)
        deadline = time.monotonic() + grace_s + 1.0
        for sender in self._senders.values():
            sender.join(max(0.0, deadline - time.monotonic()))
        left = {n: c.pending for n, c in self.outbox.counts.items() if c.pending}
        if left:
            log.warning("notifications_held", pending=left,
                        action="kept in the outbox, sent at the next start")  # fmt: skip

    def view(self, now: float | None = None) -> list[dict[str, Any]]:
        """Each target's state, for /api/status, /health and /metrics (any thread)."""
        now = time.time() if now is None else now
        out = []
        with self.outbox.lock:
            for name, target in self.outbox.targets.items():
                c = self.outbox.counts[name]
                failing = c.last_error_at is not None and (c.last_ok or 0) < c.last_error_at
                out.append({
                    "name": name, "target": target.describe(), "pending": c.pending,
                    "max_pending": target.max_pending, "sent": c.sent,
                    "failed_attempts": c.failed_attempts, "dropped": c.dropped,
                    "failing": failing, "last_error": c.last_error if failing else None,
                    "last_ok_age_s": round(now - c.last_ok, 3) if c.last_ok else None,
                    "oldest_age_s": round(now - c.oldest, 3) if c.oldest else None,
                })  # fmt: skip
        return out
