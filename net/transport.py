"""An HTTP transport for lookups and webhooks: every request within a total deadline.

httpx's timeouts bound each network operation (a connect, one read, one write), not a
request: a server that answers one byte a second never trips a 3 s read timeout, and a
lookup waits for it for as long as it drips. Here a request made inside `deadline(s)`
(per thread: a file's lookups run in a pool of threads sharing one client) gets `s`
seconds in all, from connecting to the last byte of its body: each operation on the
socket may wait only for the time that is left, and none starts once it is gone (httpx
then raises its `ConnectTimeout`, `ReadTimeout` or `WriteTimeout`). A TLS handshake is one
operation whose timeout CPython's `ssl` keeps as a total. Resolving the host name is
bounded too: `getaddrinfo` cannot be interrupted, so it runs in a thread of its own and the
request stops waiting for it when the deadline passes (the thread ends when the system
resolver gives up; at most `MAX_PENDING_LOOKUPS` such threads wait at once).

The transport is httpcore's connection pool (keep-alive, as httpx's own transport) with a
network backend that applies the deadline; proxies are taken from the environment
(`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) as httpx would take them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

_local = threading.local()  # .at: this thread's deadline (monotonic), or None
MAX_PENDING_LOOKUPS = 16  # host name lookups still waiting on a resolver past their deadline
_pending = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every request this thread makes in the block to `seconds` in all."""
    _local.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.at = None


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout`, cut to what is left of this thread's deadline (`expired` if nothing)."""
    at = getattr(_local, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        sock = self._inner.get_extra_info("socket")
        direct = isinstance(sock, ssl.SSLSocket) or self._inner.get_extra_info("ssl_object") is None
        if not direct:  # TLS inside a proxy's TLS: httpcore's own loop (per send)
            self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))
            return
        # httpcore's loop gives each send() the whole timeout again: a server that reads
        # a byte now and then would keep it sending forever
        view = memoryview(buffer)
        try:
            while view:
                sock.settimeout(_left(timeout, httpcore.WriteTimeout))
                view = view[sock.send(view) :]
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(exc) from exc
        except OSError as exc:
            raise httpcore.WriteError(exc) from exc

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in _resolve(host, port, _left(timeout, httpcore.ConnectTimeout)):
            left = _left(timeout, httpcore.ConnectTimeout)
            try:
                inner = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, as socket.create_connection would
                continue
            return _Stream(inner)
        raise error or httpcore.ConnectError(f"{host}: no address")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """`host`'s addresses (itself if it is one), within `timeout` seconds when given."""
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host.strip("[]")))]
    found: list[list[str]] = []
    failed: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except OSError as exc:
            failed.append(exc)
        finally:
            _pending.release()
            done.set()

    if timeout is None:
        _pending.acquire()
        lookup()
    else:
        if not _pending.acquire(timeout=0):
            busy = f"{MAX_PENDING_LOOKUPS} lookups still waiting"
            raise httpcore.ConnectError(f"resolving {host}: the resolver is not answering ({busy})")
        threading.Thread(target=lookup, name="folderd-resolve", daemon=True).start()
        if not done.wait(timeout):
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than the deadline")
    if failed:
        raise httpcore.ConnectError(f"resolving {host}: {failed[0]}")
    return found[0]


_NAMES = "ConnectTimeout ReadTimeout WriteTimeout PoolTimeout ConnectError ReadError WriteError "
_NAMES += "ProxyError UnsupportedProtocol LocalProtocolError RemoteProtocolError"
# httpcore's exceptions as httpx raises them (the same names)
_MAPPED = {getattr(httpcore, name): getattr(httpx, name) for name in _NAMES.split()}


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
            httpcore.ProxyError, httpcore.UnsupportedProtocol) as exc:  # fmt: skip
        raise _MAPPED.get(type(exc), httpx.TransportError)(str(exc)) from exc


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class Transport(httpx.BaseTransport):
    """Keep-alive connections (`limits`), each request within its thread's deadline."""

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        self._ssl = ssl_context
        self._limits = limits
        self._pools: dict[str | None, httpcore.ConnectionPool] = {}  # by proxy URL
        self._lock = threading.Lock()
        self._proxies = urllib.request.getproxies_environment()

    def _pool(self, url: httpx.URL) -> httpcore.ConnectionPool:
        proxy = _proxy_for(url, self._proxies)
        with self._lock:
            pool = self._pools.get(proxy)
            if pool is None:
                common: dict[str, Any] = {
                    "ssl_context": self._ssl,
                    "max_connections": self._limits.max_connections,
                    "max_keepalive_connections": self._limits.max_keepalive_connections,
                    "keepalive_expiry": self._limits.keepalive_expiry,
                    "network_backend": _Backend(),
                }
                if proxy is None:
                    pool = httpcore.ConnectionPool(**common)
                else:
                    p = httpx.Proxy(proxy)
                    pool = httpcore.HTTPProxy(
                        proxy_url=httpcore.URL(scheme=p.url.raw_scheme, host=p.url.raw_host,
                                               port=p.url.port, target=p.url.raw_path),
                        proxy_auth=p.raw_auth,
                        proxy_headers=p.headers.raw,
                        **common,
                    )  # fmt: skip
                self._pools[proxy] = pool
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,  # a SyncByteStream
            extensions=request.extensions,
        )
        with _as_httpx():
            resp = self._pool(request.url).handle_request(req)
        return httpx.Response(
            resp.status,
            headers=resp.headers,
            stream=_Body(resp.stream),  # type: ignore[arg-type]  # iterable, in this pool
            extensions=resp.extensions,
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _proxy_for(url: httpx.URL, proxies: dict[str, str]) -> str | None:
    """The environment's proxy for `url` (None: connect directly)."""
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # (untyped)
    if not proxies or bypass(url.host, proxies):
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and not proxy.startswith(("http://", "https://")):
        raise httpx.UnsupportedProtocol(f"unsupported proxy {proxy!r} (http:// or https://)")
    return proxy or None
