"""A TCP server that misbehaves the way a broken or hostile endpoint does, for the tests of
every remote call's deadline (lookups, S3, PostgreSQL).

`Hostile` listens on a free port of `host` and treats each connection by its current
`mode` (a test may change it at any time; new connections take the new mode):

  drip          reads the request's head, answers `200` with `Content-Length: 100000`,
                then sends one byte of body every `interval` seconds
  drip_head     reads the request's head, then sends the answer's head itself one byte
                every `interval` seconds (it never completes)
  silent        accepts and reads, never answers
  deaf          accepts and neither reads nor answers (a client's upload fills the
                socket buffers and stalls)
  trickle       reads 1 KiB every `interval` seconds, never answers (an upload crawls on)
  proxy         forwards both ways to `upstream` (host, port): a good endpoint again

`accepted` counts connections (`accepted_at`: when each came, monotonic); `hang_up()` ends
the connections open now, `close()` those and the listener.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


class Hostile:
    def __init__(
        self,
        mode: str = "drip",
        host: str = "127.0.0.1",
        interval: float = 1.0,
        upstream: tuple[str, int] | None = None,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.upstream = upstream
        self.accepted = 0
        self.accepted_at: list[float] = []
        self._listener = socket.create_server((host, 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="hostile", daemon=True)
        self._thread.start()

    def __enter__(self) -> Hostile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.hang_up()
        self._thread.join(5)

    def hang_up(self) -> None:
        """End the connections open now (a client kept them alive: its next request
        connects again, and meets the current mode)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self.accepted_at.append(time.monotonic())
                self._conns.append(conn)
            mode = self.mode
            threading.Thread(target=self._serve, args=(conn, mode), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: str) -> None:
        try:
            if mode == "proxy":
                self._proxy(conn)
            elif mode == "deaf":
                self._stop.wait()
            elif mode == "trickle":
                while not self._stop.wait(self.interval) and conn.recv(1024):
                    pass
            elif self._read_head(conn):
                if mode == "drip":
                    conn.sendall(HEAD)
                    self._drip(conn, b"x" * 100_000)
                elif mode == "drip_head":
                    self._drip(conn, HEAD)
                else:  # silent: keeps reading whatever comes
                    while not self._stop.is_set() and conn.recv(65536):
                        pass
        except OSError:
            pass
        finally:
            conn.close()

    def _read_head(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        return True

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self._stop.wait(self.interval):
                return
            conn.sendall(data[i : i + 1])

    def _proxy(self, conn: socket.socket) -> None:
        if self.upstream is None:
            raise OSError("no upstream")
        with socket.create_connection(self.upstream, timeout=10) as up:
            up.settimeout(None)
            pair = {conn: up, up: conn}
            while not self._stop.is_set():
                ready, _, _ = select.select(list(pair), [], [], 0.5)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    pair[src].sendall(data)
