"""The outbox: notifications written with the state change they report.

`Outbox.add` inserts one row per `notify` target that wants the event into the journal's
`outbox` table, on the loop's connection and in the transaction the loop's next journal
flush commits, together with the move it reports (a file into processed/ or failed/): so
a notification is durable exactly when its event is, and kill -9 at any instant neither
loses one nor makes one up. The senders (`daemon.webhooks`) take the rows from there.

A row holds the body exactly as it is sent: JSON with the event's idempotency key (`id`,
also sent as `Idempotency-Key`), so a notification sent twice (its receiver's 2xx lost to
a crash) is recognisable. Each target holds at most `max_pending` rows; what comes past
that is dropped and counted, never waited for: a receiver that is down stops no file.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from config.notify import NotifyTarget
from daemon.journal import Journal
from formats.names import texts

log = structlog.get_logger(__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `v1` signature of `body` sent at `timestamp`: HMAC-SHA256 with the target's
    secret over `<timestamp>.<body>`, hex (as Stripe signs its webhooks)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def file_key(event: str, summary: dict[str, Any]) -> str:
    """The idempotency key of a file's event: the same for the same run's summary however
    often it is reported (after a crash, recovery reports what the journal missed)."""
    seed = f"{event}:{summary.get('uid')}:{summary.get('attempts')}:{summary.get('finished_ts')}"
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


@dataclass
class TargetCounts:
    """What a target's notifications came to (shared by the loop and its sender)."""

    pending: int = 0
    sent: int = 0
    failed_attempts: int = 0
    dropped: int = 0  # past max_pending, or refused by the receiver too often
    last_ok: float | None = None  # wall clock
    last_error: str | None = None
    last_error_at: float | None = None
    oldest: float | None = None  # when the oldest pending notification was made
    full_logged: bool = field(default=False, repr=False)


class Outbox:
    """The loop's side: add notifications, know what each target holds."""

    def __init__(self, journal: Journal, instance: str | None, host: str) -> None:
        self.journal = journal
        self.instance, self.host = instance, host
        self.targets: dict[str, NotifyTarget] = {}
        self.counts: dict[str, TargetCounts] = {}
        self.lock = threading.Lock()  # over `counts`: the senders change them too

    def use(self, targets: Iterable[NotifyTarget]) -> None:
        """The targets of the config in use (at start, at every reload). A target no longer
        configured can never be sent to: its rows are discarded, with a log line."""
        self.targets = {t.name: t for t in targets}
        counted = "SELECT target, COUNT(*) FROM outbox GROUP BY target"
        held = dict(self.journal.execute("outbox_count", counted) or [])
        for name, n in held.items():
            if name not in self.targets:
                self.journal.execute("outbox_discard", "DELETE FROM outbox WHERE target = ?",
                                     (name,))  # fmt: skip
                log.warning("notifications_discarded", target=name, count=n,
                            reason="no such notify target in the config now")  # fmt: skip
        with self.lock:
            self.counts = {name: self.counts.get(name) or TargetCounts() for name in self.targets}
            for name, c in self.counts.items():
                c.pending = held.get(name, 0)

    def wanted(self, event: str) -> bool:
        return any(event in t.events for t in self.targets.values())

    def add(self, event: str, data: dict[str, Any], key: str | None = None) -> int:
        """A notification of `event` for every target that wants it: `data` is the body's
        own part (`{"summary": …}`, `{"report": …}`). Returns how many were written."""
        targets = [t for t in self.targets.values() if event in t.events]
        if not targets:
            return 0
        now = time.time()
        key = key or uuid.uuid4().hex
        envelope = {"id": key, "event": event, "created": _iso(now), "created_ts": now,
                    "instance": self.instance, "host": self.host, **data}  # fmt: skip
        try:
            body = orjson.dumps(envelope)
        except TypeError:  # a name that is not UTF-8, in a message
            body = orjson.dumps(texts(envelope))
        written = 0
        for target in targets:
            with self.lock:
                c = self.counts[target.name]
                full = c.pending >= target.max_pending
                if full:
                    c.dropped += 1
                else:
                    c.pending += 1
                    c.oldest = c.oldest or now
            if full:
                if not c.full_logged:
                    c.full_logged = True
                    log.error("notifications_dropped", target=target.name, kind=event,
                              max_pending=target.max_pending,
                              action="held notifications at max_pending: new ones are dropped "
                              "until the receiver takes some")  # fmt: skip
                continue
            c.full_logged = False
            if (
                self.journal.execute(
                    "outbox_add",
                    "INSERT INTO outbox (target, event, key, body, created) VALUES (?, ?, ?, ?, ?)",
                    (target.name, event, key, body, now),
                )
                is None
            ):  # the journal failed (/health says so): this one is lost
                with self.lock:
                    c.pending -= 1
                    c.dropped += 1
                log.error("notification_lost", target=target.name, kind=event, id=key,
                          reason="the journal could not take it")  # fmt: skip
                continue
            written += 1
        return written


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
