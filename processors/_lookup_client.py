"""The HTTP side of `http_lookup`: one lookup with its retries, back-off (honouring
`Retry-After`), the shared rate limit, and a bearer token fetched once and refreshed on 401.

Each attempt (a lookup's or the token request's) is bounded in time and size: `timeout_s`
in all, redirects and body included (`net.fetch`), the body read as it comes and
refused past `max_response_bytes`. A redirect is followed only within the request's
origin (scheme, host, port) or to a host the config names (`redirect_hosts`): the headers
hold secrets, and so does the token request's body.

A lookup never raises: it returns an `Outcome`, whose `error` says why it has no usable
answer. Deciding what a status means for the record is the processor's business.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from net.fetch import NoAnswer, fetch, retry_after
from net.transport import Transport
from processors._lookup_rate import SharedRate

log = structlog.get_logger(__name__)

MAX_WAIT_S = 60.0  # no back-off or Retry-After makes one record wait longer than this
_LIMITERS: dict[tuple[Path, float], SharedRate] = {}  # one open state file per process
_LIMITERS_LOCK = threading.Lock()


def shared_rate(path: Path, rate_per_s: float) -> SharedRate:
    """This process's limiter on `path` (kept open for the process's life: files come
    and go, the schedule stays)."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get((path, rate_per_s))
        if limiter is None:
            limiter = _LIMITERS[(path, rate_per_s)] = SharedRate(path, rate_per_s)
        return limiter


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # building one costs ~50 ms: once per process, not once per batch's client
    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes | None  # JSON, for POST


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: no response at all
    data: Any  # the response's JSON (None when it had none)
    error: str | None  # why there is no usable answer, after the retries
    attempts: int


@dataclass(frozen=True)
class Settings:
    timeout_s: float  # the most one attempt may take, redirects and body included
    retries: int
    backoff_s: float
    headers: dict[str, str]  # secrets already expanded: never log them
    concurrency: int
    max_response_bytes: int = 1 << 20
    # (host, port) a redirect may go to; port None: any
    redirect_hosts: frozenset[tuple[str, int | None]] = frozenset()


class Stats:
    """Counters shared by a file's lookup threads (they land in the file's summary)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "retries": 0}

    def add(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1


class Token:
    """A bearer token from `url` (POSTed `body`), read from its JSON's `field`; fetched on
    first use and again when a request is answered 401."""

    def __init__(self, url: str, field: str, body: dict[str, Any]) -> None:
        self.url, self.field, self.body = url, field, body
        self._value: str | None = None
        self._lock = threading.Lock()
        self.fetched = 0  # tokens had so far

    def get(self, client: httpx.Client, settings: Settings, stale: str | None = None) -> str:
        """The current token; a new one when it is missing or is `stale` (the one a 401
        refused: threads that saw the same 401 fetch it once between them)."""
        with self._lock:
            if self._value is None or self._value == stale:
                self._value = self._fetch(client, settings)
                self.fetched += 1
            return self._value

    def _fetch(self, client: httpx.Client, settings: Settings) -> str:
        body = orjson.dumps(self.body)
        try:
            answer = fetch(client, settings, "POST", self.url, body, _JSON)
        except NoAnswer as exc:
            raise TokenError(f"token request: {exc.problem}") from None
        if answer.status != 200:
            raise TokenError(f"token request answered HTTP {answer.status}")
        try:
            value = orjson.loads(answer.body).get(self.field)
        except (orjson.JSONDecodeError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise TokenError(f"token response has no string {self.field!r}")
        log.info("lookup_token", host=urlsplit(self.url).netloc)  # the URL may hold a secret
        return value


class TokenError(Exception):
    """The token could not be had: every lookup needing it fails with this reason."""


_JSON = {"Content-Type": "application/json"}


class Caller:
    """Makes one file's lookups; `call` is safe from many threads at once."""

    def __init__(self, settings: Settings, token: Token | None, rate: SharedRate | None) -> None:
        self.settings = settings
        self.token = token
        self.rate = rate
        self.stats = Stats()

    def client(self) -> httpx.Client:
        n = self.settings.concurrency
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        return httpx.Client(
            transport=Transport(_ssl_context(), limits),
            timeout=self.settings.timeout_s,
            headers=self.settings.headers,
        )

    def call(self, client: httpx.Client, req: Request) -> Outcome:
        """One lookup: retried on 429, 5xx, timeouts and dropped connections."""
        attempt = 0
        refreshed = False
        token: str | None = None
        stale: str | None = None  # the token a 401 refused, until a new one is had
        while True:
            attempt += 1
            headers = dict(_JSON) if req.body is not None else {}
            if self.token is not None:
                try:
                    token = self.token.get(client, self.settings, stale)
                except TokenError as exc:
                    return Outcome(None, None, str(exc), attempt)
                headers["Authorization"] = f"Bearer {token}"
                stale = None
            if self.rate is not None:
                self.rate.wait()
            self.stats.add("requests")
            status: int | None = None
            data: Any = None
            wait: float | None = None
            try:
                answer = fetch(client, self.settings, req.method, req.url, req.body, headers)
            except NoAnswer as exc:
                if not exc.retry:
                    return Outcome(None, None, exc.problem, attempt)
                problem = exc.problem
            else:
                status = answer.status
                if status == 401 and self.token is not None and not refreshed:
                    refreshed = True  # one refresh per lookup, and it is not a retry
                    stale = token
                    attempt -= 1
                    continue
                data, bad_json = _json(answer.body)
                if status != 429 and status < 500:
                    return Outcome(status, data, bad_json if status < 300 else None, attempt)
                problem = f"HTTP {status}"
                wait = retry_after(answer.retry_after)
            if attempt > self.settings.retries:
                return Outcome(status, data, f"{problem} after {attempt} attempt(s)", attempt)
            delay = min(wait if wait is not None else self._backoff(attempt), MAX_WAIT_S)
            self.stats.add("retries")
            log.info("lookup_retry", problem=problem, attempt=attempt, delay_s=round(delay, 3))
            time.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        # no jitter: the shared rate limit already spreads the retries of many workers
        return self.settings.backoff_s * 2 ** (attempt - 1)


def _json(body: bytes) -> tuple[Any, str | None]:
    """The response's JSON, or None and why not (an empty body is no JSON, no error)."""
    if not body:
        return None, None
    try:
        return orjson.loads(body), None
    except orjson.JSONDecodeError as exc:
        return None, f"response is not JSON: {exc}"
