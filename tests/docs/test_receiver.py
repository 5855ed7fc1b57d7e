"""The manual's webhook receiver (docs/delivering/webhooks.md) runs as written: it takes
what a real daemon sends, signed with the same secret, and refuses a body whose signature
is wrong, a stale timestamp, or no signature at all."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Queue, wait_until
from tests.daemon.receiver import free_port
from tests.docs.blocks import DOCS, blocks

pytestmark = pytest.mark.integration
PAGE = DOCS / "delivering" / "webhooks.md"
MARK = "<!-- the receiver: tests/docs/test_receiver.py runs it -->"
SECRET = "manual-s3cret"


def _receiver_code() -> str:
    (block,) = [b for b in blocks(PAGE) if b.before.strip() == MARK]
    assert block.lang == "python"
    handler = "    def do_POST" + block.text.split("    def do_POST", 1)[1].split("\n\n", 1)[0]
    assert len(handler.splitlines()) == 10, "the manual promises a ten-line handler"
    return block.text


class Running:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port
        self.url = f"http://127.0.0.1:{port}/"
        self.lines: list[str] = []

    def read_line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        self.lines.append(line)
        return line


@pytest.fixture
def manual_receiver(tmp_path: Path) -> Iterator[Running]:
    script = tmp_path / "receiver.py"
    script.write_text(_receiver_code())
    port = free_port()
    env = {**os.environ, "HOOK_SECRET": SECRET, "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    running = Running(proc, port)

    def up() -> bool:
        try:
            return httpx.post(running.url, content=b"{}", timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(up, 30, "the manual's receiver to listen")
        yield running
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _post(r: Running, body: bytes, t: int, secret: str = SECRET) -> int:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Folderd-Signature": f"t={t},v1={mac}"}
    return httpx.post(r.url, content=body, headers=headers, timeout=5).status_code


def test_the_manual_receiver(
    manual_receiver: Running, start_daemon: Any, queue: Queue, tmp_path: Path
) -> None:
    r = manual_receiver
    body = json.dumps({"event": "file.processed", "id": "x1"}).encode()
    now = int(time.time())
    assert _post(r, body, now, secret="wrong") == 401
    assert _post(r, body, now - 3600) == 401  # a replay, an hour late
    assert httpx.post(r.url, content=body, timeout=5).status_code == 401  # unsigned
    assert _post(r, body, now) == 204
    assert r.read_line() == "file.processed x1"

    config = tmp_path / "p.json"
    notify = {"url": r.url, "secret": "${HOOK_SECRET}", "events": ["file.processed"]}
    config.write_text(json.dumps({"routes": [{"start": "end"}], "notify": [notify]}))
    start_daemon("--config", str(config), env={"HOOK_SECRET": SECRET})
    queue.drop("a.log", "hello\n")
    event, key = r.read_line().split()  # blocks until the daemon's notification came
    assert event == "file.processed"
    assert len(key) == 32
