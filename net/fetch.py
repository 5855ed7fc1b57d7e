"""One bounded HTTP attempt (`fetch`): the request, the redirects it may follow and the
answer's body, all within a total deadline (`net.transport`), the body refused past a
size cap.

A redirect is followed only within the request's origin (scheme, host, port) or to a host
the caller names (`redirect_hosts`), never from https down to http: the headers may hold
secrets (a lookup's token, a webhook's signature). The messages of `NoAnswer` name the
settings that bound an attempt (`timeout_s`, `max_response_bytes`, `redirect_hosts`), as
the configs of lookups and webhooks both call them.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from net.transport import Transport, deadline

MAX_REDIRECTS = 5  # followed within one attempt


class Bounds(Protocol):
    """What bounds an attempt."""

    @property
    def timeout_s(self) -> float: ...  # the most one attempt may take, body included

    @property
    def max_response_bytes(self) -> int: ...

    @property
    def redirect_hosts(self) -> frozenset[tuple[str, int | None]]: ...  # (host, port|None)


def client(ssl_context: ssl.SSLContext, limits: httpx.Limits, timeout_s: float,
           headers: dict[str, str] | None = None) -> httpx.Client:  # fmt: skip
    """An httpx client whose requests `fetch` bounds (keep-alive per `limits`)."""
    return httpx.Client(transport=Transport(ssl_context, limits), timeout=timeout_s,
                        headers=headers)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None


class NoAnswer(Exception):
    """An attempt that got no usable answer; `retry`: whether asking again may help."""

    def __init__(self, problem: str, retry: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry = retry


def fetch(
    client: httpx.Client,
    settings: Bounds,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    keep_method: bool = False,
) -> Answer:
    """One attempt: the request, the redirects within its origin (or to `redirect_hosts`)
    and the answer's body (at most `max_response_bytes`), all within `timeout_s`.
    `keep_method`: a redirect that would change the method (a POST answered 301, 302 or
    303 becomes a GET, without its body) is not followed: the answer is refused."""
    with deadline(settings.timeout_s):
        try:
            return _exchange(client, settings, method, url, body, headers or {}, keep_method)
        except httpx.TimeoutException:  # every wait is cut to what is left of timeout_s
            raise NoAnswer(f"timed out: no complete answer within {settings.timeout_s:g} s "
                           "(timeout_s)", True) from None  # fmt: skip
        except httpx.UnsupportedProtocol as exc:  # a transport error asking again won't fix
            raise NoAnswer(f"{type(exc).__name__}: {exc}", False) from None
        except httpx.TransportError as exc:
            raise NoAnswer(f"{type(exc).__name__}: {exc or 'connection failed'}", True) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # asking again will not help
            raise NoAnswer(f"{type(exc).__name__}: {exc}", False) from None


def _exchange(
    client: httpx.Client,
    settings: Bounds,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    keep_method: bool = False,
) -> Answer:
    request = client.build_request(method, url, content=body, headers=headers)
    origin = _origin(request.url)
    for _ in range(MAX_REDIRECTS + 1):
        resp = client.send(request, stream=True)
        try:
            if resp.next_request is None:
                return Answer(resp.status_code, _read(resp, settings.max_response_bytes),
                              resp.headers.get("Retry-After"))  # fmt: skip
            request = resp.next_request
            if keep_method and request.method != method:
                why = f"HTTP {resp.status_code}: redirected as a {request.method}, not followed"
                raise NoAnswer(f"{why} (it would not carry the {method})", False)
        finally:
            resp.close()
        if _origin(request.url) != origin:
            where = _origin_text(request.url)
            if not _may_follow(origin, request.url, settings.redirect_hosts):
                raise NoAnswer(f"redirected to another origin ({where}), not followed "
                               "(redirect_hosts)", False)  # fmt: skip
            if "Authorization" in headers:  # httpx drops it on the way to another origin
                request.headers["Authorization"] = headers["Authorization"]
    raise NoAnswer(f"more than {MAX_REDIRECTS} redirects", False)


Origin = tuple[str, str, int | None]


def _origin(url: httpx.URL) -> Origin:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def _origin_text(url: httpx.URL) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


def _may_follow(origin: Origin, url: httpx.URL, hosts: frozenset[tuple[str, int | None]]) -> bool:
    """A redirect to another origin: only to a host named in `hosts` (with its port, or
    any port), and never from https down to http."""
    if origin[0] == "https" and url.scheme != "https":
        return False
    _, host, port = _origin(url)
    return (host, None) in hosts or (host, port) in hosts


def _read(resp: httpx.Response, limit: int) -> bytes:
    """The body (decoded), refused as soon as it is known to exceed `limit` bytes."""
    too_large = NoAnswer(f"response larger than {limit} bytes (max_response_bytes)", False)
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit and "Content-Encoding" not in resp.headers:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), if usable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)
