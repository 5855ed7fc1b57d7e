"""The Preview's worker process: a config checked, a file dry-run, away from the daemon.

An edited config names plugins, and importing one runs its code; a hostile or huge file
can take any time. So neither happens in the daemon's process: `PreviewWorker` keeps one
spawned child, the preview server, and hands it one request at a time over a pipe (when
the pipe closes, the dashboard is gone: the server ends, and the preview it runs with it).
The server forks a process for each request, in a session of its own and with a scratch
directory for its temp files (`dashboard.scratch`), waits for it up to the time limit,
then kills its process group and whatever else it started and removes the scratch
directory, on every path: answered, timed out, or died. So a preview leaves nothing
running and nothing on disk, and a timed-out one answers "timed out" while the daemon
never notices; the memory of each and the files it writes are capped too. The forked
process runs `daemon.oneoff.dryrun`: the worker's code path in a temp directory, sinks left out,
nothing kept; the plugins it imports go with it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import structlog

from config import ConfigError, locate
from daemon.oneoff.dryrun import dry_pipeline, dry_run
from daemon.worker.main import die_with_parent  # a preview dies with its server, as a worker does
from dashboard import scratch
from processors import LoadedPipeline, file_routes
from processors.loader import check

log = structlog.get_logger(__name__)

_CTX = multiprocessing.get_context("spawn")  # the dashboard has threads: never fork
BUSY_WAIT_S = 1.0  # how long a request waits for the preview running before it
GRACE_S = 10.0  # past the time limit, how long the server may take to end a preview
STOP_S = 5.0  # how long the server may take to end when told to
LINE_CHARS = 4000  # an output line shown longer is cut (a line may be megabytes)
MEMORY_CAP = 1 << 30  # the child's heap (RLIMIT_DATA)
FILE_CAP = 256 << 20  # the largest file the child may write (RLIMIT_FSIZE)


class PreviewError(Exception):
    """A preview that could not run; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """What the child is asked: check `config_text` (None: use `active`), and, with a
    `name`, dry-run `path` (or `data`, an upload) under that name."""

    config_text: str | None
    active: LoadedPipeline | None
    name: str | None = None
    path: str | None = None
    data: bytes | None = None
    max_lines: int = 100


def problems(text: str) -> tuple[LoadedPipeline | None, list[dict[str, Any]]]:
    """An edited config loaded, or its problems, each with its JSON path and line."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [{"path": "$", "line": exc.lineno, "message": f"not valid JSON: {exc}"}]
    except RecursionError:
        return None, [{"path": "$", "line": 1, "message": "nested too deeply"}]
    loaded, errors = check(raw)
    found = locate.lines(text)
    return loaded, [_located(e, found) for e in errors]


def _located(error: ConfigError, found: dict[str, int]) -> dict[str, Any]:
    message = error.message + (f" ({error.hint})" if error.hint else "")
    return {"path": error.key, "line": locate.line_of(found, error.key), "message": message}


def answer(req: Request) -> dict[str, Any]:
    """The child's work: the config's problems, then (when it has none) the dry run."""
    edited = req.config_text is not None
    loaded, errors = problems(req.config_text) if req.config_text is not None else (req.active, [])
    result: dict[str, Any] = {"errors": errors, "config": "edited" if edited else "active"}
    if loaded is None or req.name is None:
        return result
    pipeline = dry_pipeline(loaded, trace=True)
    routes = pipeline.config.routes
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        src = Path(req.path) if req.path is not None else Path(tmp) / "upload"
        if req.data is not None:
            src.write_bytes(req.data)
        run = dry_run(pipeline, src, req.name, req.max_lines)
    summary = run.summary.to_json()
    counts = summary.get("outputs", {})
    route = None
    if run.route is not None:
        route = {"index": run.route, "describe": file_routes.describe(routes[run.route])}
    result.update(
        route=route,
        metadata=summary.get("metadata", {}),
        outputs={
            tag: {
                "lines": [line[:LINE_CHARS] for line in lines],
                "total": counts.get(pipeline.config.outputs[tag].suffix, len(lines)),
            }
            for tag, lines in run.outputs.items()
        },
        trace=summary.pop("trace", []),
        summary=summary,
    )
    return result


def _limit_resources() -> None:
    """A preview may use at most MEMORY_CAP of heap (a plugin that hoards memory gets a
    MemoryError, not the machine's RAM) and write files of at most FILE_CAP (an output
    that grows without end gets EFBIG, not the disk)."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_CAP, FILE_CAP))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us


def _serve(conn: Connection, init: Callable[[], None] | None) -> None:
    """The preview server: one request at a time, each in a process of its own, until the
    dashboard's end of `conn` closes (its process died, or it stopped us)."""
    # Not die_with_parent(): that ties us to the thread that started us, one of the
    # dashboard's pool threads, which ends when it has been idle a while. A closed pipe
    # says the dashboard is gone, and leaves us the moment to end the preview running.
    _limit_resources()
    scratch.become_subreaper()
    if init is not None:
        init()
    while True:
        try:
            req, timeout = conn.recv()
        except EOFError:
            return
        reply = _run(conn, req, timeout)
        if reply is None:
            return
        conn.send(reply)


def _run(conn: Connection, req: Request, timeout: float) -> dict[str, Any] | None:
    """`req` answered by a forked process, which is ended after `timeout` seconds at most,
    its processes killed and its scratch directory removed whatever happened; None if
    the dashboard went away meanwhile."""
    try:
        where = scratch.create()
    except OSError as exc:  # the machine's fault, not the preview's
        return {"error": f"no temp directory for the preview: {exc}", "status": 503}
    reader, writer = multiprocessing.Pipe(duplex=False)
    server = os.getpid()
    try:
        pid = os.fork()  # this process has one thread: forking is safe
    except OSError as exc:
        scratch.remove(where)
        return {"error": f"the preview's process could not start: {exc}", "status": 503}
    if pid == 0:
        try:
            reader.close()
            conn.close()
            _preview(writer, req, where, server)
        finally:
            os._exit(0)
    writer.close()
    try:
        ready = wait([reader, conn], timeout)
        if reader in ready:
            try:
                return reader.recv()
            except EOFError:  # killed (OOM, a signal) before it answered
                return {"error": f"the preview's process died ({_death(pid)})"}
        if conn in ready:  # nothing is sent while a preview runs: the dashboard is gone
            return None
        return {"timed_out": True}
    finally:
        reader.close()
        killed = scratch.end(pid)
        scratch.remove(where)
        if killed:
            log.info("preview_processes_killed", file=req.name, processes=killed)


def _death(pid: int) -> str:
    """How the child `pid` ended, leaving it unreaped (so its pid still names its group)."""
    deadline = time.monotonic() + 1.0  # its pipe closes as it exits: moments before
    while (info := os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)) is None:
        if time.monotonic() > deadline:
            return "it closed its pipe"
        time.sleep(0.01)
    if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return f"killed by {signal.Signals(info.si_status).name}"
    return f"exit status {info.si_status}"


def _preview(writer: Connection, req: Request, where: Path, server: int) -> None:
    """In the forked process: a session of its own (one process group with everything it
    starts), temp files in `where`, then the answer."""
    os.setsid()
    die_with_parent()
    if os.getppid() != server:  # the server died before prctl took effect
        return
    os.environ["TMPDIR"] = str(where)  # for the programs a plugin runs, and sweep()
    tempfile.tempdir = str(where)
    try:
        reply: dict[str, Any] = {"ok": answer(req)}
    except Exception as exc:  # a bug or a plugin's: the preview says so
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        writer.send(reply)
    except Exception as exc:  # a plugin's value that does not pickle, in the metadata
        writer.send({"error": f"the preview's answer could not be sent: {exc}"})


class PreviewWorker:
    """One child process, one request at a time, each bounded by `timeout` seconds."""

    def __init__(self, timeout: float, init: Callable[[], None] | None = None) -> None:
        self.timeout = timeout
        self._init = init  # picklable: run first in the child (main.py's logging setup)
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is None or self._proc is None or not self._proc.is_alive():
            self._stop()
            self.sweep()  # what a server killed before (or a daemon killed) left behind
            parent, child = _CTX.Pipe()
            self._proc = _CTX.Process(
                target=_serve, args=(child, self._init), name="folderd-preview", daemon=True
            )
            self._proc.start()
            child.close()
            self._conn = parent
        return self._conn

    def _stop(self) -> None:
        """End the server: told by its pipe closing, it ends the preview it runs (its
        processes, its files) and exits; killed if it does not within STOP_S."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(STOP_S)
            if self._proc.is_alive():
                self._proc.kill()  # its preview's leftovers: for the next sweep()
                self._proc.join(STOP_S)
            self._proc = None

    @staticmethod
    def sweep() -> None:
        """Remove what previews of dead servers left: scratch directories, processes."""
        try:
            scratch.sweep()
        except OSError as exc:  # the temp dir unreadable: nothing of ours to sweep there
            log.warning("preview_sweep_failed", error=str(exc))

    def run(self, req: Request) -> dict[str, Any]:
        """The child's answer (blocking: call it from a thread); PreviewError when another
        preview is running, or when this one runs past the time limit."""
        # Never queue behind a long preview: each waiter would hold one of the dashboard's
        # threads (its sync pages share them) for up to the whole time limit.
        if not self._lock.acquire(timeout=BUSY_WAIT_S):
            raise PreviewError("another preview is running; try again in a moment", 503)
        try:
            conn = self._start()
            if req.name is not None:
                log.info("preview_started", file=req.name, edited=req.config_text is not None)
            conn.send((req, self.timeout))
            if not conn.poll(self.timeout + GRACE_S):  # the server itself is stuck
                log.warning("preview_server_stuck", file=req.name, timeout_s=self.timeout)
                self._stop()
                raise self._timed_out()
            try:
                reply = conn.recv()
            except EOFError:
                self._stop()
                raise PreviewError("the preview's worker process died", 500) from None
        finally:
            self._lock.release()
        if reply.get("timed_out"):
            log.info("preview_timed_out", file=req.name, timeout_s=self.timeout)
            raise self._timed_out()
        if "error" in reply:
            raise PreviewError(reply["error"], reply.get("status", 500))
        return reply["ok"]

    def _timed_out(self) -> PreviewError:
        return PreviewError(
            f"the preview took longer than {self.timeout:g} s (--preview-timeout); "
            "its processes were stopped",
            504,
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stop()
