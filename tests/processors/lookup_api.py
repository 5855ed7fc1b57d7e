"""A real HTTP API for the `http_lookup` tests (and its benchmark): stdlib `http.server`
in a thread, on a free port, with endpoints that misbehave in the ways real APIs do.

  /item/<id>        {"id", "name"} (after `delay_s`); 404 for ids starting with "x"
  /status/<id>      {"id", "status": "active" | "inactive" (odd ids)}
  /flaky429/<id>    first call per id 429 with `Retry-After: 1`, then /item's answer
  /flaky500/<id>    first call per id 500, then /item's answer
  /slow/<id>        first call per id sleeps 1 s, then /item's answer
  /drop/<id>        first call per id closes the connection without answering
  /down/<id>        always 503
  /text/<id>        200 with a body that is not JSON
  /echo             (POST) {"got": the JSON body}
  /token            (POST) {"access_token": "tN"}: a new token each call
  /secure/<id>      /item's answer for `Authorization: Bearer <the newest token>`, else 401;
                    a token is good for `token_uses` requests
  /redirect/<code>?to=<url>  (GET or POST) answers <code> with `Location: <url>`
  /stolen           (GET or POST) {"stolen": true}: a redirect's target on another host
  /big/<n>          200 with a JSON string of n bytes, `Content-Length` n (streamed)
  /chunked/<n>      the same, chunked: no length said up front
  /gzip/<n>         the same, gzip-encoded: a few KB on the wire, n bytes decoded

`headers_seen[path]` keeps the headers of every request, `bodies[path]` every POST body.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


class Api:
    """The API's state: calls per path, tokens issued; `url` is its base URL."""

    def __init__(self, delay_s: float = 0.0, token_uses: int = 1_000_000) -> None:
        self.delay_s = delay_s
        self.token_uses = token_uses
        self.calls: Counter[str] = Counter()
        self.times: list[tuple[float, str]] = []  # (monotonic time, path) of every call
        self.lock = threading.Lock()
        self.tokens = 0
        self.token_used = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.api_keys: set[str | None] = set()  # X-Api-Key headers seen
        self.headers_seen: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self.bodies: defaultdict[str, list[bytes]] = defaultdict(list)
        self.url = ""

    def hit(self, path: str) -> int:
        with self.lock:
            self.calls[path] += 1
            self.times.append((time.monotonic(), path))
            return self.calls[path]

    def total(self, prefix: str) -> int:
        with self.lock:
            return sum(n for path, n in self.calls.items() if path.startswith(prefix))


def _handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with api.lock:
                api.headers_seen[self.path.partition("?")[0]].append(dict(self.headers))
                api.api_keys.add(self.headers.get("X-Api-Key"))
                api.in_flight += 1
                api.max_in_flight = max(api.max_in_flight, api.in_flight)
            try:
                self._answer()
            finally:
                with api.lock:
                    api.in_flight -= 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.hit(self.path)
            path = self.path.partition("?")[0]
            with api.lock:
                api.headers_seen[path].append(dict(self.headers))
                api.bodies[path].append(body)
            if path.startswith("/redirect/"):
                self._redirect()
            elif path == "/stolen":
                self._json(200, {"stolen": True, "access_token": "stolen"})
            elif self.path == "/echo":
                self._json(200, {"got": orjson.loads(body)})
            elif self.path == "/token":
                with api.lock:
                    api.tokens += 1
                    api.token_used = 0
                    token = f"t{api.tokens}"
                self._json(200, {"access_token": token, "echo": orjson.loads(body or b"{}")})
            else:
                self._json(404, {"error": "no such endpoint"})

        def _answer(self) -> None:
            _, kind, ident = [*self.path.split("/", 2), "", ""][:3]
            n = api.hit(self.path)
            if kind == "redirect":
                return self._redirect()
            if kind == "stolen":
                return self._json(200, {"stolen": True})
            if kind in ("big", "chunked", "gzip"):
                return self._big(kind, int(ident))
            if kind == "flaky429" and n == 1:
                return self._json(429, {"error": "slow down"}, {"Retry-After": "1"})
            if kind == "flaky500" and n == 1:
                return self._json(500, {"error": "oops"})
            if kind == "slow" and n == 1:
                time.sleep(1.0)
            if kind == "drop" and n == 1:
                self.close_connection = True
                return
            if kind == "down":
                return self._json(503, {"error": "down"})
            if kind == "text":
                return self._send(200, b"<html>not json</html>", "text/html")
            if kind == "secure" and not self._authorized():
                return self._json(401, {"error": "bad token"})
            if kind == "status":
                status = "inactive" if int(ident) % 2 else "active"
                return self._json(200, {"id": ident, "status": status})
            if api.delay_s:
                time.sleep(api.delay_s)
            if ident.startswith("x"):
                return self._json(404, {"error": "not found"})
            self._json(200, {"id": ident, "name": f"item-{ident}"})

        def _redirect(self) -> None:
            code, _, to = self.path.removeprefix("/redirect/").partition("?to=")
            self.send_response(int(code))
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _big(self, kind: str, n: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if kind == "gzip":
                body = gzip.compress(b'"' + b"0" * (n - 2) + b'"', 9)
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header(*(("Content-Length", str(n)) if kind == "big" else
                               ("Transfer-Encoding", "chunked")))  # fmt: skip
            self.end_headers()
            block = b"0" * (1 << 20)
            pieces = [b'"', *[block] * ((n - 2) // len(block)), block[: (n - 2) % len(block)], b'"']
            try:
                for part in filter(None, pieces):  # (an empty chunk would end the body)
                    frame = b"%x\r\n%b\r\n" % (len(part), part) if kind == "chunked" else part
                    self.wfile.write(frame)
                if kind == "chunked":
                    self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the client stopped reading: what it should do
                self.close_connection = True

        def _authorized(self) -> bool:
            with api.lock:
                good = self.headers.get("Authorization") == f"Bearer t{api.tokens}"
                if good and api.token_used < api.token_uses:
                    api.token_used += 1
                    return True
                return False

        def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
            self._send(status, orjson.dumps(data), "application/json", headers)

        def _send(
            self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once: no SYN retries


@contextmanager
def serve(api: Api, host: str = "127.0.0.1") -> Iterator[Api]:
    """Runs `api` on a free port of `host` until the block ends."""
    server = _Server((host, 0), _handler(api))
    api.url = f"http://{host}:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="lookup-api", daemon=True
    )
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
