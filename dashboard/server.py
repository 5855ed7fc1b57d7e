"""Serve the dashboard from a background thread of the daemon process.

The socket is bound here, in the caller's thread, so a port in use is a clear
`DaemonError` at start-up rather than an exception lost in the server thread, and `--port
0` tells us which port the OS picked before anyone needs it. uvicorn then runs its own
asyncio loop on a daemon thread; it installs no signal handlers there (the daemon's main
thread owns SIGTERM/SIGINT/SIGHUP), and `stop()` ends it after the daemon loop has stopped.

Descriptors are budgeted so that no flood of connections can run the daemon out of them:
the soft open-file limit is raised to the hard one, and the dashboard keeps at most
`--max-connections` open (`dashboard.connections`), fewer if the limit leaves less room
after what the daemon holds and may still open. Repeated errors of uvicorn and asyncio are
folded into one line per interval (`dashboard.digest`).

A request's address is its TCP peer's: uvicorn's proxy headers are off (it would believe
`X-Forwarded-For` from 127.0.0.1 by default, letting any local client pick the address
the login throttle counts under), unless `--trusted-proxies` names the proxies to believe.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import psutil
import structlog
import uvicorn

from config.casts import is_loopback
from daemon import DaemonError
from dashboard.app import create_app
from dashboard.connections import OVERFLOW, ConnectionGuard, protocol_for
from dashboard.digest import Digest, RepeatFilter

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.control import DaemonAPI

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
# asyncio uses one number for two things: the listen() backlog and how many connections
# it accepts per wake-up, before any protocol code can close one. The second must be small
# (those descriptors count against the budget); the first large, so that in a flood a
# monitor's connection waits in the kernel's queue (no descriptor) instead of losing its
# SYN: uvicorn gets ACCEPT_BURST, and the socket is given LISTEN_QUEUE once it serves.
ACCEPT_BURST = 128
LISTEN_QUEUE = 2048
# Descriptors the daemon may open after the dashboard starts: journal connections of the
# request thread pool (anyio's 40 threads, 3 each), replaced workers' pipes, files it reads;
# and the connections kept beyond the cap only to be told 503.
RESERVED_FDS = 256 + OVERFLOW
FDS_PER_CONNECTION = 2  # its socket, and a file it uploads into or downloads from
MIN_CONNECTIONS = 8
_FOLDED_LOGGERS = ("uvicorn.error", "asyncio")


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (for this process and the workers it
    starts later); return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("open_file_limit_kept", soft=soft, hard=hard, error=str(exc))
        return soft
    return hard


def connection_limit(wanted: int, nofile: int, in_use: int) -> int:
    """`wanted`, or fewer if the open-file limit leaves less room; DaemonError if too few."""
    room = (nofile - in_use - RESERVED_FDS - ACCEPT_BURST) // FDS_PER_CONNECTION
    if room < MIN_CONNECTIONS:
        raise DaemonError(
            f"the open-file limit ({nofile}, {in_use} in use) leaves room for "
            f"{max(room, 0)} dashboard connections, fewer than {MIN_CONNECTIONS}: raise it "
            "(ulimit -n, or LimitNOFILE= in the unit), or run with --no-dashboard"
        )
    return min(wanted, room)


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handling (it runs off the main thread, which owns signals),
    flushing the log digest on every tick (ten a second)."""

    def __init__(self, config: uvicorn.Config, digest: Digest) -> None:
        super().__init__(config)
        self.digest = digest

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for sock in sockets or []:
            sock.listen(LISTEN_QUEUE)  # asyncio set it to ACCEPT_BURST

    async def on_tick(self, counter: int) -> bool:
        self.digest.flush()
        return await super().on_tick(counter)


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP, not socket.create_server's 0: asyncio only sets TCP_NODELAY on
    # accepted sockets whose proto says TCP, and without it every keep-alive response
    # waits ~40 ms for a delayed ACK.
    sock = None
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
            flags=socket.AI_PASSIVE,
        )[0]  # fmt: skip
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(LISTEN_QUEUE)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise DaemonError(
            f"the dashboard cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(pick another --port, or --no-dashboard)"
        ) from None
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DashboardServer:
    """`start()` returns once the dashboard accepts connections; `stop()` ends it."""

    def __init__(self, api: DaemonAPI, settings: Settings) -> None:
        self.api = api
        self.settings = settings
        self.digest = Digest()
        self.app = create_app(api, settings, self.digest)
        self.url = ""
        self._filter = RepeatFilter(self.digest)
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        nofile = raise_open_file_limit()
        limit = connection_limit(self.settings.max_connections, nofile, psutil.Process().num_fds())
        guard = ConnectionGuard(limit, self.settings.http_timeout, self.digest)
        sock = _bind(self.settings.host, self.settings.port)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=port,
            http=protocol_for(guard),
            backlog=ACCEPT_BURST,
            log_config=None,
            access_log=self.settings.debug,
            lifespan="on",
            loop="asyncio",
            # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise, and any
            # local process could then pick the address the login throttle counts under.
            proxy_headers=bool(self.settings.trusted_proxies),
            forwarded_allow_ips=list(self.settings.trusted_proxies),
            ws="none",
            timeout_graceful_shutdown=3,
        )
        self._server = server = _ThreadServer(config, self.digest)
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name="dashboard", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                why = f": {self._error}" if self._error else ""
                raise DaemonError(f"the dashboard did not start{why}")
            time.sleep(0.01)
        self.url = _url(self.settings.host, port)
        log.info(
            "dashboard_started",
            url=self.url,
            token_required=bool(self.settings.token),
            allowed_hosts=list(self.settings.allowed_hosts),
            trusted_proxies=list(self.settings.trusted_proxies),
            max_connections=limit,
            open_file_limit=nofile,
        )
        if not self.settings.token and not is_loopback(self.settings.host):
            log.warning("dashboard_unprotected", url=self.url, reason="--allow-no-token")

    def _serve(self, server: _ThreadServer, sock: socket.socket) -> None:
        loggers = [logging.getLogger(name) for name in _FOLDED_LOGGERS]
        for logger in loggers:
            logger.addFilter(self._filter)
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit too: uvicorn exits when startup fails
            self._error = exc
            log.error("dashboard_error", error=f"{type(exc).__name__}: {exc}")
        finally:
            sock.close()
            for logger in loggers:
                logger.removeFilter(self._filter)
            self.digest.flush(everything=True)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.app.state.dashboard.hub.close()
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT_S)
        log.info("dashboard_stopped", url=self.url, clean=not self._thread.is_alive())
