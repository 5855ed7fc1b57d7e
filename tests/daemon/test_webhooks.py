"""`notify` through real daemons and a real receiver: every event arrives at least once,
none is made up, each body is the file's summary and its signature verifies — with a
receiver that hangs, answers 500 at random, is down, and across a SIGKILL of the daemon
between a commit and its notification or while its sender is under way. A receiver that
is down holds notifications, never files."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.outbox import file_key
from tests.conftest import Queue, wait_until
from tests.daemon.receiver import Receiver, free_port
from tests.dashboard.conftest import start_dashboard  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _config(path: Path, url: str, **target: Any) -> Path:
    notify = {"url": url, "secret": "${HOOK_SECRET}", "timeout_s": 1, "backoff_s": 0.05,
              "max_backoff_s": 0.3, **target}  # fmt: skip
    path.write_text(json.dumps({"version": 1, "routes": [{"start": "end"}], "notify": [notify]}))
    return path


ENV = {"HOOK_SECRET": "s3cret"}


def _expected(queue: Queue) -> dict[str, dict[str, Any]]:
    """The notification each finished file must cause, by its idempotency key."""
    out = {}
    for summary in queue.summaries().values():
        event = f"file.{summary['status']}"
        out[file_key(event, summary)] = {"event": event, "summary": summary}
    return out


def _drop(queue: Queue, n: int, prefix: str = "f") -> list[str]:
    names = []
    for i in range(n):
        name = f"{prefix}{i:02d}.log"
        queue.drop(name, "" if i % 5 == 0 else f"line {i}\n")  # every 5th empty: it fails
        names.append(name)
    return names


def _all_taken(receiver: Receiver, queue: Queue, n: int) -> dict[str, dict[str, Any]]:
    def done() -> dict[str, dict[str, Any]] | None:
        expected = _expected(queue)
        if len(expected) < n or not set(expected) <= receiver.ids():
            return None
        return expected

    return wait_until(done, 90, f"{n} notifications taken")


def _check(receiver: Receiver, expected: dict[str, dict[str, Any]]) -> None:
    """Each expected event taken at least once, as its summary, signed; nothing else."""
    assert receiver.ids() == set(expected), "a notification no file caused"
    for taken in receiver.taken:
        want = expected[taken.id]
        assert taken.event == want["event"] and taken.signed_ok
        assert taken.body["summary"] == want["summary"]
        assert taken.headers["Idempotency-Key"] == taken.id == taken.body["id"]
        assert taken.headers["Folderd-Event"] == taken.event


def test_hanging_then_flaky_receiver(
    start_daemon: Any, queue: Queue, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.mode = "hang"
    receiver.start()
    config = _config(tmp_path / "p.json", receiver.url)
    d = start_daemon("--config", str(config), env=ENV)
    names = _drop(queue, 20)
    wait_until(lambda: receiver.requests >= 1, 30, "a request to hang")
    wait_until(lambda: d.events("notification_failed"), 30, "the hung attempt to time out")
    assert "timed out" in d.events("notification_failed")[0]["error"]
    receiver.mode, receiver.p = "flaky", 0.5
    expected = _all_taken(receiver, queue, len(names))
    _check(receiver, expected)
    assert sorted(queue.files("processed") + queue.files("failed")) == names
    assert {e["event"] for e in expected.values()} == {"file.processed", "file.failed"}
    assert receiver.refused_signatures == 0
    assert any("HTTP 500" in (e.get("error") or "") for e in d.events("notification_failed"))


def test_down_receiver_holds_notifications_not_files(
    start_dashboard: Any,  # noqa: F811  (the fixture imported above)
    queue: Queue,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    receiver.port = free_port()  # nobody listens there yet: connections are refused
    config = _config(tmp_path / "p.json", receiver.url, max_pending=8)
    dash = start_dashboard("--config", str(config), env=ENV)
    names = _drop(queue, 10)
    wait_until(lambda: len(queue.files("processed") + queue.files("failed")) == 10, 30,
               "every file finished while the receiver is down")  # fmt: skip

    def notify_check() -> dict[str, Any] | None:
        health = dash.get("/health")
        found = [c for c in health.json()["checks"] if c["name"] == "notify notify[0]"]
        return health if found and not found[0]["ok"] and "8 held" in found[0]["detail"] else None

    health = wait_until(notify_check, 30, "a /health warning")
    assert health.status_code == 200  # a warning: the daemon is doing its job
    metrics = dash.get("/metrics").text
    assert 'folderd_notify_pending{target="notify[0]"} 8.0' in metrics
    assert 'folderd_notify_dropped_total{target="notify[0]"} 2.0' in metrics
    assert 'folderd_notify_up{target="notify[0]"} 0.0' in metrics
    page = dash.get("/pipeline").text  # the outbox on the Pipeline page
    assert f"notify[0]: http://127.0.0.1:{receiver.port}/…" in page
    assert "8 / 8" in page and "failing: ConnectError" in page
    receiver.start()  # back up, on the same port
    wait_until(lambda: len(receiver.ids()) == 8, 30, "the held notifications")
    expected = _expected(queue)
    assert receiver.ids() < set(expected)  # the 8 held; the 2 past max_pending were dropped
    _check(receiver, {k: v for k, v in expected.items() if k in receiver.ids()})
    empty = 'folderd_notify_pending{target="notify[0]"} 0.0'
    wait_until(lambda: empty in dash.get("/metrics").text, 10, "the outbox empty")
    assert sorted(queue.files("processed") + queue.files("failed")) == names


def _outbox(queue: Queue) -> int:
    journal = queue.root / ".folderd" / "journal.sqlite3"
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def test_sigkill_between_commit_and_notification(
    start_daemon: Any, queue: Queue, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.mode = "fail"
    receiver.start()
    config = _config(tmp_path / "p.json", receiver.url)
    d = start_daemon("--config", str(config), env=ENV)
    names = _drop(queue, 10)
    wait_until(lambda: _outbox(queue) == 10, 30, "every notification committed")
    assert receiver.ids() == set()
    d.kill()  # committed, never taken
    receiver.mode = "ok"
    start_daemon("--config", str(config), env=ENV)
    expected = _all_taken(receiver, queue, len(names))
    _check(receiver, expected)
    wait_until(lambda: _outbox(queue) == 0, 30, "the outbox empty")
    # none was taken before the kill, so each is delivered once after it: the restart
    # neither loses a row nor sends one twice
    assert sorted(t.id for t in receiver.taken) == sorted(expected)


def test_sigkill_while_sending(
    start_daemon: Any, queue: Queue, tmp_path: Path, receiver: Receiver
) -> None:
    """Killed while its sender is part way through the outbox: after the restart every
    notification arrives, and the only one that may arrive twice is the one in flight at
    the kill (taken by the receiver, its 2xx never read)."""
    receiver.mode, receiver.delay = "slow", 0.3  # each answer within timeout_s, slowly
    receiver.start()
    config = _config(tmp_path / "p.json", receiver.url)
    d = start_daemon("--config", str(config), env=ENV)
    names = _drop(queue, 20)
    wait_until(lambda: len(receiver.taken) >= 3, 30, "the sender under way")
    d.kill()
    before = len(receiver.taken)
    assert before < len(names) and _outbox(queue) > 0  # the kill left deliveries held
    receiver.mode = "ok"
    start_daemon("--config", str(config), env=ENV)
    expected = _all_taken(receiver, queue, len(names))
    _check(receiver, expected)
    wait_until(lambda: _outbox(queue) == 0, 30, "the outbox empty")
    ids = [t.id for t in receiver.taken]
    assert len(ids) - len(set(ids)) <= 1, "sent twice beyond the one in flight"


def test_move_the_journal_never_recorded(
    start_daemon: Any, queue: Queue, tmp_path: Path, receiver: Receiver
) -> None:
    """The daemon died after a file's move and before the journal's commit (neither the
    move nor its notification recorded): recovery finds the file moved and notifies."""
    receiver.start()
    config = _config(tmp_path / "p.json", receiver.url)
    d = start_daemon("--config", str(config), env=ENV)
    queue.drop("a.log", "one\n")
    taken = wait_until(lambda: receiver.of("file.processed"), 30, "a.log notified")
    d.signal(signal.SIGTERM)
    assert d.wait_exit() == 0
    journal = queue.root / ".folderd" / "journal.sqlite3"
    with sqlite3.connect(journal) as conn:  # as if the commit with the move never happened
        conn.execute("UPDATE files SET state = 'underprocess' WHERE rel = 'a.log'")
    receiver.taken.clear()
    start_daemon("--config", str(config), env=ENV)
    again = wait_until(lambda: receiver.of("file.processed"), 30, "a.log notified again")
    assert [t.id for t in again] == [taken[0].id]  # the same event, recognisable by its id
    assert again[0].body["summary"]["source"] == "a.log"


def test_drain_report(start_daemon: Any, queue: Queue, tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    config = _config(tmp_path / "p.json", receiver.url, events=["drain.done"])
    names = _drop(queue, 6)

    def drain() -> dict[str, Any]:
        d = start_daemon("--config", str(config), "--drain", "--skip-duplicates", env=ENV,
                         wait=False)  # fmt: skip
        assert d.wait_exit() == 0
        # its last line on stdout; the test's log has stderr too, where multiprocessing's
        # finalizers may still write after it (main's --drain warns of leaked semaphores
        # at exit as of Dec 7): the last line that is the report
        for line in reversed(d.output().strip().splitlines()):
            if line.startswith('{"kind": "drain"'):
                return dict(json.loads(line))
        raise AssertionError(f"no report:\n{d.output()[-3000:]}")

    report = drain()
    assert (report["kind"], report["processed"], report["failed"]) == ("drain", 4, 2)
    assert report["skipped_duplicates"] == 0 and report["files"] == 6
    assert report["failure_reasons"] == {"Rejected": 2}
    assert sorted(f["path"] for f in report["failures"]) == ["f00.log", "f05.log"]
    assert report["failures"][0]["error"]["message"] == "empty file (0 bytes)"
    assert report["bytes"] == sum((queue.dir("processed") / n).stat().st_size
                                  for n in queue.files("processed"))  # fmt: skip
    assert report["seconds"] >= 0
    (taken,) = receiver.of("drain.done")
    assert taken.body["report"] == report and taken.signed_ok
    assert receiver.of("file.processed") == []  # not asked for
    assert sorted(queue.files("processed") + queue.files("failed")) == names

    queue.drop("dup.log", "line 1\n")  # the same bytes as f01.log
    again = drain()
    assert (again["processed"], again["skipped_duplicates"], again["failed"]) == (1, 1, 0)
    assert [t.body["report"] for t in receiver.of("drain.done")] == [report, again]
