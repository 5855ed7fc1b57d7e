"""A small stand-in for a voter-registry API, for the voters recipe (stdlib only).

    python -m examples.voters.api --registry build/recipes/voters/registry.json [--port 8765]

  POST /v1/token           {"client_id", "client_secret"} -> {"access_token", "expires_in"};
                           a wrong secret is 403
  GET  /v1/voters/<id>     with `Authorization: Bearer <token>`:
                           200 {"id", "registered": true, "ward", "polling_station"}
                           404 {"id", "registered": false}   not on the roll
                           400 {"error"}                     not a valid ID number (Luhn)
                           401 {"error"}                     no token, or it expired
                           429 with `Retry-After: 1`         now and then (--p429)
                           503                               always, for the roll's
                                                             "unavailable" IDs
  GET  /v1/stats           what it answered so far, by kind (for the tests)

Tokens live `--token-ttl` seconds, so a long file sees its token expire and refreshed.
The roll is the JSON the recipe's generator writes: {"voters": {id: {"ward",
"polling_station"}}, "unavailable": [id, …]}. It prints `listening on <url>` once bound
(`--port 0`: a free port).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def luhn_ok(number: str) -> bool:
    """Whether `number` is all digits and its last one is the Luhn check digit."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


class Registry:
    """The API's state: the roll, the tokens issued, and what it answered."""

    def __init__(self, roll: dict[str, Any], secret: str, ttl: float, p429: float) -> None:
        self.voters: dict[str, dict[str, Any]] = roll["voters"]
        self.unavailable = set(roll.get("unavailable", ()))
        self.secret, self.ttl, self.p429 = secret, ttl, p429
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.stats: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.rng = random.Random(12)

    def count(self, what: str) -> None:
        with self.lock:
            self.stats[what] += 1

    def issue(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("client_secret") != self.secret:
            self.count("token_refused")
            return 403, {"error": "unknown client or wrong secret"}
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.ttl
            self.stats["tokens"] += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl}

    def lookup(self, auth: str | None, voter_id: str) -> tuple[int, dict[str, Any]]:
        token = (auth or "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.tokens.get(token)
            throttle = self.rng.random() < self.p429
        if expiry is None or expiry < time.monotonic():
            self.count("401")
            return 401, {"error": "token expired" if expiry else "no valid token"}
        if throttle:
            self.count("429")
            return 429, {"error": "slow down"}
        if voter_id in self.unavailable:
            self.count("503")
            return 503, {"error": "registry backend unavailable"}
        if not luhn_ok(voter_id) or len(voter_id) != 13:
            self.count("400")
            return 400, {"error": f"{voter_id!r} is not a valid ID number"}
        voter = self.voters.get(voter_id)
        self.count("200" if voter else "404")
        if voter is None:
            return 404, {"id": voter_id, "registered": False}
        return 200, {"id": voter_id, "registered": True, **voter}


def handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path != "/v1/token":
                return self._send(404, {"error": "no such endpoint"})
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            self._send(*registry.issue(body))

        def do_GET(self) -> None:
            if self.path == "/v1/stats":
                with registry.lock:
                    return self._send(200, dict(registry.stats))
            if not self.path.startswith("/v1/voters/"):
                return self._send(404, {"error": "no such endpoint"})
            status, body = registry.lookup(
                self.headers.get("Authorization"), self.path.removeprefix("/v1/voters/")
            )
            self._send(status, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: stats say enough
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registry", type=Path, required=True, help="the roll (from generate)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0: a free port")
    p.add_argument("--secret", default="demo-secret", help="the client secret it accepts")
    p.add_argument("--token-ttl", type=float, default=5.0, help="seconds a token lives")
    p.add_argument("--p429", type=float, default=0.03, help="share of lookups answered 429")
    a = p.parse_args(argv)
    registry = Registry(json.loads(a.registry.read_text()), a.secret, a.token_ttl, a.p429)
    server = ThreadingHTTPServer((a.host, a.port), handler(registry))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
