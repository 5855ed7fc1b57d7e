"""Serve the dashboard from a background thread of the daemon process.

The socket is bound here, in the caller's thread, so a port in use is a clear
`DaemonError` at start-up rather than an exception lost in the server thread, and `--port
0` tells us which port the OS picked before anyone needs it. uvicorn then runs its own
asyncio loop on a daemon thread; it installs no signal handlers there (the daemon's main
thread owns SIGTERM/SIGINT/SIGHUP), and `stop()` ends it after the daemon loop has stopped.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
import uvicorn

from daemon import DaemonError
from dashboard.app import create_app

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.api import DaemonAPI

log = structlog.get_logger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handling: it runs off the main thread, which owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


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
        sock.listen(2048)
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
        self.app = create_app(api, settings)
        self.url = ""
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        sock = _bind(self.settings.host, self.settings.port)
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=port,
            log_config=None,
            access_log=self.settings.debug,
            lifespan="on",
            loop="asyncio",
            ws="none",
            timeout_graceful_shutdown=3,
        )
        self._server = server = _ThreadServer(config)
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
        log.info("dashboard_started", url=self.url, token_required=bool(self.settings.token))

    def _serve(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit too: uvicorn exits when startup fails
            self._error = exc
            log.error("dashboard_error", error=f"{type(exc).__name__}: {exc}")
        finally:
            sock.close()

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
