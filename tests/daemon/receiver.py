"""A real webhook receiver on 127.0.0.1 for the tests of `notify`: it checks each
notification's signature as the manual's receiver does and keeps what it took, and it
misbehaves on demand (`mode`, changeable at any time; each request takes the mode of the
moment it arrives):

  ok        204 for a notification whose signature verifies (401 for one that does not)
  fail      500
  flaky     500 for a share `p` of the requests (random), else as ok
  hang      reads the request, never answers (until `close()`)
  slow      answers as ok after `delay` seconds, unless the client hung up first
  drip      answers 200 with a 1 MiB Content-Length at once, then one byte of it every
            0.1 s, until the client hangs up
  redirect  307 to `location` (a request to `location` itself is answered as ok)
  see_other 303 to `location` (a POST's client would follow it as a GET)

In the modes that keep a request open (hang, slow, drip) the receiver watches for the
client hanging up and records after how many seconds it did (`cuts`): what a sender's
total deadline is measured by.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Taken:
    event: str
    id: str
    body: dict[str, Any]
    headers: dict[str, str]
    signed_ok: bool


@dataclass
class Receiver:
    secret: str = "s3cret"
    mode: str = "ok"
    p: float = 0.5
    location: str = ""
    delay: float = 5.0
    port: int = 0
    taken: list[Taken] = field(default_factory=list)
    requests: int = 0
    refused_signatures: int = 0
    cuts: list[tuple[str, float]] = field(default_factory=list)  # (mode, seconds)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._handle(self)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up
                    super().handle_error(request, client_address)

        server = Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening (the port is free again: connections are refused)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verified(self, headers: Any, body: bytes) -> bool:
        """The manual's check: `t=<unix seconds>,v1=<hex>`, HMAC-SHA256 over `t.body`,
        and a timestamp within 5 minutes."""
        try:
            parts = dict(p.split("=", 1) for p in headers["Folderd-Signature"].split(","))
            t, v1 = parts["t"], parts["v1"]
        except (KeyError, ValueError, AttributeError):
            return False
        mac = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
        return hmac.compare_digest(v1, mac.hexdigest()) and abs(time.time() - int(t)) < 300

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests += 1
        mode = self.mode
        began = time.monotonic()
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if mode == "hang" or (mode == "slow" and self._hung_up(h, self.delay)):
            if mode == "hang":
                self._hung_up(h, 3600.0)
            self._cut(mode, began)
            return
        if mode == "drip":
            self._drip(h, began)
            return
        if mode == "fail" or (mode == "flaky" and random.random() < self.p):
            h.send_response(500)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        moved = urlsplit(self.location)
        if mode in ("redirect", "see_other") and h.path != f"{moved.path}?{moved.query}":
            h.send_response(307 if mode == "redirect" else 303)
            h.send_header("Location", self.location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        ok = self.verified(h.headers, body)
        if not ok:
            with self._lock:
                self.refused_signatures += 1
            h.send_response(401)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data = json.loads(body)
        with self._lock:
            self.taken.append(Taken(data["event"], data["id"], data, dict(h.headers), ok))
        h.send_response(204)
        h.end_headers()

    def _hung_up(self, h: BaseHTTPRequestHandler, within: float) -> bool:
        """Wait up to `within` seconds (or until `close()`) for the client to hang up."""
        end = time.monotonic() + within
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            readable, _, _ = select.select([h.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    if h.connection.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
        return False

    def _drip(self, h: BaseHTTPRequestHandler, began: float) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(1 << 20))
        h.end_headers()
        try:
            while not self._stop.is_set():
                h.wfile.write(b" ")
                h.wfile.flush()
                if self._hung_up(h, 0.1):
                    break
        except OSError:
            pass
        self._cut("drip", began)
        h.close_connection = True

    def _cut(self, mode: str, began: float) -> None:
        if not self._stop.is_set():
            with self._lock:
                self.cuts.append((mode, time.monotonic() - began))

    def ids(self, event: str | None = None) -> set[str]:
        with self._lock:
            return {t.id for t in self.taken if event is None or t.event == event}

    def of(self, event: str) -> list[Taken]:
        with self._lock:
            return [t for t in self.taken if t.event == event]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
