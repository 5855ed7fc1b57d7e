"""The outbox and its senders in one process, against real receivers on 127.0.0.1: a
notification is sent only once the journal committed it, a receiver that answers too
slowly or drips its answer is cut at the target's total deadline, a redirect is followed
within the origin but not to another host nor as a GET, a refused notification is dropped
after REFUSED_TRIES, pauses and resumes are reported, and the outbox holds at most
`max_pending`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from config.notify import NotifyTarget
from daemon.attempt import Status
from daemon.faults import Pause
from daemon.journal import Journal
from daemon.states import Folders
from daemon.summary import Summary
from daemon.webhooks import REFUSED_TRIES, Webhooks
from tests.conftest import wait_until
from tests.daemon.receiver import Receiver, free_port


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def _hooks(tmp_path: Path, url: str, **kw: object) -> tuple[Journal, Webhooks]:
    journal = Journal(tmp_path / "journal.sqlite3")
    hooks = Webhooks(journal, None, "test-host")
    bounds: dict[str, object] = {"timeout_s": 2, "backoff_s": 0.01, "max_backoff_s": 0.05, **kw}
    target = NotifyTarget("t", url, frozenset({"file.processed", "queue.paused", "queue.resumed"}),
                          secret="s3cret", **bounds)  # type: ignore[arg-type]  # fmt: skip
    hooks.use((target,))
    hooks.start()
    return journal, hooks


def _summary(n: int) -> Summary:
    return Summary(f"{n:032x}", "f.log", "f.log", Status.PROCESSED, 1, float(n), float(n), 0.0)


def test_sent_only_once_committed_and_in_order(tmp_path: Path, receivers: list[Receiver]) -> None:
    r = Receiver().start()
    receivers.append(r)
    journal, hooks = _hooks(tmp_path, r.url)
    try:
        for n in range(5):
            hooks.file_done(_summary(n))
        assert hooks.view()[0]["pending"] == 5
        # not committed yet: another connection (as each sender has) sees none of them
        with sqlite3.connect(journal.path) as other:
            assert other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
        journal.flush()
        hooks.wake()
        wait_until(lambda: len(r.taken) == 5, 10, "five notifications")
        assert [t.body["summary"]["uid"] for t in r.taken] == [f"{n:032x}" for n in range(5)]
        wait_until(lambda: hooks.view()[0]["pending"] == 0, 10, "the outbox empty")
        assert hooks.view()[0]["sent"] == 5
    finally:
        hooks.close(1.0)
        journal.close()


@pytest.mark.serial  # it measures how soon each attempt is cut
@pytest.mark.parametrize("mode", ["slow", "drip"])
def test_deadline_cuts_slow_and_dripping_receivers(
    tmp_path: Path, receivers: list[Receiver], mode: str
) -> None:
    """Each attempt ends within `timeout_s` in all, the answer's body included: a receiver
    that answers after 5 s, or sends its 200 at once and then a byte every 0.1 s, is hung
    up on at the deadline (measured by the receiver), and the notification is sent again
    once it answers in time."""
    r = Receiver(mode=mode, delay=5.0).start()
    receivers.append(r)
    journal, hooks = _hooks(tmp_path, r.url, timeout_s=1.0)
    try:
        with structlog.testing.capture_logs() as logs:
            hooks.file_done(_summary(1))
            journal.flush()
            hooks.wake()
            wait_until(lambda: len(r.cuts) >= 2, 20, "two attempts cut")
            r.mode, r.delay = "slow", 0.2  # within the deadline now
            wait_until(lambda: r.taken, 20, "the notification taken")
            wait_until(lambda: hooks.view()[0]["pending"] == 0, 10, "the outbox empty")
        for cut_mode, seconds in r.cuts[:2]:
            assert cut_mode == mode
            assert 0.9 <= seconds < 3.0, r.cuts  # the 1 s deadline (room for a loaded machine)
        failed = [e for e in logs if e["event"] == "notification_failed"]
        assert failed and all("timed out" in e["error"] for e in failed), failed
        (taken,) = r.taken
        assert taken.signed_ok and taken.body["summary"]["uid"] == f"{1:032x}"
        assert hooks.view()[0]["sent"] == 1 and hooks.view()[0]["dropped"] == 0
    finally:
        hooks.close(1.0)
        journal.close()


def test_redirect_within_the_origin_followed(tmp_path: Path, receivers: list[Receiver]) -> None:
    """A 307 to the same scheme, host and port keeps the POST, its body and its signature."""
    r = Receiver(mode="redirect").start()
    receivers.append(r)
    r.location = r.url + "?moved"
    journal, hooks = _hooks(tmp_path, r.url)
    try:
        hooks.file_done(_summary(7))
        journal.flush()
        hooks.wake()
        wait_until(lambda: r.taken, 10, "the notification taken after the redirect")
        (taken,) = r.taken
        assert taken.signed_ok and taken.body["summary"]["uid"] == f"{7:032x}"
        assert r.requests == 2  # the POST, then the POST again where it was sent
        wait_until(lambda: hooks.view()[0]["sent"] == 1, 10, "counted as sent")
    finally:
        hooks.close(1.0)
        journal.close()


@pytest.mark.parametrize("where", ["other host", "same origin as GET"])
def test_redirects_refused(tmp_path: Path, receivers: list[Receiver], where: str) -> None:
    elsewhere = Receiver().start()
    r = Receiver(mode="redirect").start()
    receivers += [elsewhere, r]
    r.location = elsewhere.url if where == "other host" else r.url + "?again"
    journal, hooks = _hooks(tmp_path, r.url)
    if where == "same origin as GET":  # 303 turns the POST into a GET: not followed
        r.mode = "see_other"
    try:
        with structlog.testing.capture_logs() as logs:
            hooks.file_done(_summary(1))
            journal.flush()
            hooks.wake()
            wait_until(lambda: hooks.view()[0]["dropped"] == 1, 20, "the refused one dropped")
        refused = [e for e in logs if e["event"] == "notification_refused"]
        assert refused and refused[0]["attempts"] == REFUSED_TRIES
        failed = [e for e in logs if e["event"] == "notification_failed"]
        expected = "another origin" if where == "other host" else "redirected as a GET"
        assert all(expected in e["error"] for e in failed), failed
        assert elsewhere.requests == 0 and r.requests == REFUSED_TRIES
        assert hooks.view()[0]["pending"] == 0
    finally:
        hooks.close(1.0)
        journal.close()


def test_pause_and_resume_reported(tmp_path: Path, receivers: list[Receiver]) -> None:
    r = Receiver().start()
    receivers.append(r)
    journal, hooks = _hooks(tmp_path, r.url)
    folders = Folders(tmp_path / "watch_dir", tmp_path / "results")
    folders.create()
    pause = Pause()
    pause.on_pause, pause.on_resume = hooks.paused, hooks.resumed
    try:
        pause.check(folders, 1 << 62, 100.0)  # less free space than asked for: paused
        pause.check(folders, 1 << 62, 100.5)  # still paused, not reported again
        assert pause.check(folders, 0, 200.0)  # the probe finds it cleared: resumed
        journal.flush()
        hooks.wake()
        wait_until(lambda: len(r.taken) == 2, 10, "two notifications")
        paused, resumed = r.taken
        assert paused.event == "queue.paused" and paused.body["pause"]["cause"] == "disk_low"
        assert resumed.event == "queue.resumed" and resumed.body["pause"]["paused_s"] == 100.0
    finally:
        hooks.close(1.0)
        journal.close()


def test_bounded(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    journal, hooks = _hooks(tmp_path, nobody, max_pending=3)
    try:
        for n in range(5):
            hooks.file_done(_summary(n))
        journal.flush()
        view = hooks.view()[0]
        assert (view["pending"], view["dropped"]) == (3, 2)
    finally:
        hooks.close(0.0)
        journal.close()
