"""Two live instances of one name never both claim (shared mode): a second start is refused
on the host, and an instance whose lease file someone else deleted, overwrote or made
read-only stops claiming and committing and says so."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import DaemonProcess, Queue, wait_until

pytestmark = pytest.mark.integration

LEASE = "2"


def _twin(start_daemon: Callable[..., DaemonProcess], *args: str, **kw) -> DaemonProcess:
    return start_daemon("--shared", "--instance", "twin", "--lease", LEASE, *args, **kw)


def _lease_file(queue: Queue) -> Path:
    return queue.root / ".folderd" / "instances" / "twin.json"


def _processed_by_other(queue: Queue, start_daemon, twin: DaemonProcess) -> None:
    """A file dropped now is claimed by a peer, never by the twin in conflict."""
    queue.drop("after.log", "dropped once the lease was lost\n")
    start_daemon("--shared", "--instance", "other", "--lease", LEASE)
    wait_until(lambda: queue.files("processed") == ["after.log"], 30, "after.log processed")
    assert not twin.events("file_claimed"), "the instance in conflict claimed a file"
    assert twin.proc.poll() is None  # it stays up, saying why it does nothing


def test_a_deleted_lease_stops_claiming_and_a_second_twin_is_refused(
    queue: Queue, start_daemon
) -> None:
    first = _twin(start_daemon)
    _lease_file(queue).unlink()
    second = _twin(start_daemon, wait=False)
    assert second.wait_exit(60) == 1
    assert f"another instance named 'twin' is running on this host (PID {first.pid}" in (
        second.output()
    )
    ev = first.wait_event("lease_conflict", timeout=30)
    assert ev["how"] == "was deleted"
    _processed_by_other(queue, start_daemon, first)


def test_an_overwritten_lease_is_a_conflict_naming_the_writer(queue: Queue, start_daemon) -> None:
    first = _twin(start_daemon)
    lease = _lease_file(queue)
    data = json.loads(lease.read_bytes())
    tmp = lease.with_name(".intruder")
    tmp.write_text(json.dumps({**data, "host": "elsewhere", "pid": 4242, "token": "theirs"}))
    tmp.rename(lease)
    ev = first.wait_event("lease_conflict", timeout=30)
    assert ev["how"] == "was overwritten by host elsewhere, PID 4242"
    _processed_by_other(queue, start_daemon, first)
    assert json.loads(lease.read_bytes())["host"] == "elsewhere", "left as it was found"


def test_a_lease_made_read_only_is_a_conflict_shown_on_health(queue: Queue, start_daemon) -> None:
    first = _twin(start_daemon, "--port", "0", dashboard=True)
    url = first.wait_event("dashboard_started")["url"]
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    os.chmod(_lease_file(queue), 0o444)
    first.wait_event("lease_conflict", timeout=30)

    def lease_check() -> dict | None:
        r = httpx.get(f"{url}/health", timeout=10)
        checks = {c["name"]: c for c in r.json()["checks"]}
        return checks["lease"] if r.status_code == 503 and not checks["lease"]["ok"] else None

    check = wait_until(lease_check, 30, "/health 503 naming the lease")
    assert "another instance named 'twin' may be running" in check["detail"]
    _processed_by_other(queue, start_daemon, first)
