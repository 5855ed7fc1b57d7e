"""Running one file through the pipeline, in a worker process.

`process_file()` reads the claimed input (never following a symlink, never opening
anything but a regular file), hashes it while the pipeline streams it, writes every output
and the summary to temp files under `results/.folderd-tmp/` (not synced yet),
delivers to the configured sinks in between (`daemon.delivery`: the outputs from their
temp files, then the input) and returns an `Outcome`: the temp → final names to commit, or
why it failed.
`commit_outcomes()` then commits them (`daemon.commit`), several files' together when a
worker has more than one finished (`daemon.pool`): the syncs (unless --no-fsync), renames
and directory fsyncs happen in the workers, in parallel, and the main loop only moves the
input once its outcome, results already durable, comes back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

from config.pipeline import is_output_suffix
from daemon.attempt import Job, Outcome, Status
from daemon.commit import Pending, commit_group
from daemon.delivery import deliver
from daemon.duplicates import first_match
from daemon.faults import Fault, cause_of, classify
from daemon.provenance import Provenance, route_taken
from daemon.settle import signature
from daemon.shared.lease import may_commit
from formats.names import shown, texts
from processors import Pipeline, ProcessorError
from sinks import SinkDataError, SinkError

log = structlog.get_logger(__name__)


OnRead = Callable[[int], None]  # told the bytes read so far (a worker sends `Progress`)
PROGRESS_EVERY_S = 0.5


class _HashingReader:
    """A read-only byte stream that hashes and counts everything read through it, and
    reports the bytes read so far at most every PROGRESS_EVERY_S (for large files).
    Given the input's hash already (`daemon.duplicates`), it only counts."""

    def __init__(self, raw: io.RawIOBase, on_read: OnRead | None, hashed: Any = None) -> None:
        self._raw = raw
        self._on_read = on_read
        self._next_report = time.monotonic() + PROGRESS_EVERY_S
        self._hashing = hashed is None
        self.sha = hashlib.sha256() if hashed is None else hashed
        self.size = 0

    def _count(self, n: int) -> None:
        self.size += n
        if self._on_read is not None and time.monotonic() >= self._next_report:
            self._next_report = time.monotonic() + PROGRESS_EVERY_S
            self._on_read(self.size)

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if self._hashing:
            self.sha.update(data)
        self._count(len(data))
        return data

    def readinto(self, buf: Any) -> int:
        n = self._raw.readinto(buf)
        if n and self._hashing:
            self.sha.update(memoryview(buf)[:n])
        if n:
            self._count(n)
        return n or 0

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class _Outputs:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.files: dict[str, IO[Any]] = {}
        self.paths: dict[str, str] = {}

    def open(self, suffix: str, binary: bool = False) -> IO[Any]:
        if suffix in self.files:
            return self.files[suffix]
        if not is_output_suffix(suffix):
            raise ProcessorError(f"invalid output suffix {suffix!r}", error_type="ConfigError")
        path = os.path.join(self.job.tmp_dir, f"{self.job.uid}.{self.job.attempt}.{suffix}")
        if binary:  # a workbook (processors.workbook)
            f: IO[Any] = open(path, "wb", buffering=1 << 16)  # noqa: SIM115
        else:
            f = open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 16)  # noqa: SIM115
        self.files[suffix], self.paths[suffix] = f, path
        return f

    def close(self) -> None:
        """Written, not synced: `commit_results` syncs every temp of a file together."""
        for f in self.files.values():
            f.close()

    def discard(self) -> None:
        for suffix, f in self.files.items():
            with contextlib.suppress(OSError):  # flushing on close can fail (a full disk)
                f.close()
            _unlink(self.paths[suffix])


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_summary(path: str, summary: dict[str, Any]) -> None:
    """A summary's temp file (`commit_results` syncs it with the outputs)."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    try:
        data = orjson.dumps(summary, option=option)
    except TypeError:  # a message holding a name that is not UTF-8
        data = orjson.dumps(texts(summary), option=option)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:  # a write to a regular file may still be short
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def base_summary(job: Job, started: float) -> dict[str, Any]:
    return {
        "uid": job.uid,
        "source": shown(job.rel),
        "original_name": shown(job.original),
        "status": None,
        "attempts": job.attempt,
        "started": _iso(started),
        "started_ts": started,
        **({"provenance": job.provenance.as_json()} if job.provenance is not None else {}),
        **({"origin": job.origin.as_json()} if job.origin is not None else {}),
    }


def failure_summary(
    uid: str,
    rel: str,
    original: str,
    attempt: int,
    size: int,
    error: dict[str, Any],
    provenance: Provenance | None = None,
) -> dict[str, Any]:
    """The summary of a file that failed without a worker's outcome (rejected, gave up)."""
    job = Job(uid, rel, original, "", attempt, "", False, provenance=provenance)
    summary = base_summary(job, time.time())
    summary.update(size=size, error=error, output_files=[])
    return finish_summary(summary, Status.FAILED, time.monotonic())


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def finish_summary(summary: dict[str, Any], status: Status, started: float) -> dict[str, Any]:
    """`started` is the attempt's monotonic start: a duration never comes from the wall
    clock, which NTP or a VM restore may step back; `finished` is a timestamp."""
    finished = time.time()
    summary.update(
        status=status,
        finished=_iso(finished),
        finished_ts=finished,
        duration_s=round(max(0.0, time.monotonic() - started), 6),
    )
    return summary


def error_info(exc: BaseException, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, OSError) and exc.strerror:
        info["message"] = f"[errno {exc.errno}] {exc.strerror}"
    if isinstance(exc, SinkError):
        info["sink"] = exc.sink
    info.update(extra)
    return info


def _not_done(summary: dict[str, Any], exc: BaseException, **extra: Any) -> Outcome:
    """An attempt cut short by something other than the file's data: a transient error is
    retried; an environment error (a full disk…) is held, not counted (`daemon.faults`)."""
    if classify(exc) is Fault.ENVIRONMENT:
        summary["error"] = error_info(exc, cause=cause_of(exc), **extra)
        status = Status.ENVIRONMENT
    else:
        summary["error"] = error_info(exc, **extra)
        status = Status.RETRY
    summary["status"] = Status.FAILED
    return Outcome(status, summary)


class InputChanged(Exception):
    """The input is not what was claimed, or changed while it was read."""


def _check_unchanged(job: Job, opened: os.stat_result, end: os.stat_result, read: int) -> None:
    at_open = (opened.st_size, opened.st_mtime_ns, opened.st_ino)
    if job.claimed is not None and job.claimed != at_open:
        raise InputChanged(f"changed after it was claimed (size {job.claimed[0]} -> "
                           f"{opened.st_size} bytes)")  # fmt: skip
    if signature(end) != signature(opened) or read != opened.st_size:
        raise InputChanged(f"changed while processed ({opened.st_size} bytes at open, "
                           f"{read} read, {end.st_size} at the end)")  # fmt: skip


def process_file(job: Job, pipeline: Pipeline, on_read: OnRead | None = None) -> Outcome:
    """Run one attempt; never raises for anything the file or the pipeline did."""
    started = time.monotonic()  # for its duration; the summary's timestamps are wall time
    summary = base_summary(job, time.time())
    outputs = _Outputs(job)
    if job.origin is not None:  # a source may have routes and deliver of its own
        pipeline = pipeline.variant(job.origin.source)
    try:
        fd = os.open(job.src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        summary["error"] = error_info(exc, message="the file disappeared before it was read")
        return Outcome(Status.VANISHED, finish_summary(summary, Status.FAILED, started))
    except OSError as exc:
        return _not_done(finish_summary(summary, Status.FAILED, started), exc)
    reader: _HashingReader | None = None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProcessorError("not a regular file", error_type="NotARegularFile")
        with os.fdopen(fd, "rb", buffering=0, closefd=True) as raw:
            fd = -1
            hashed = None
            if job.earlier:
                hashed, size, first = first_match(raw, job.earlier)
                if first is not None:
                    _check_unchanged(job, st, os.fstat(raw.fileno()), size)
                    summary.update(sha256=first.sha256, size=size, output_files=[])
                    summary.update(first.pointer())
                    log.info("file_duplicate", path=job.rel, duplicate_of=first.uid,
                             first=first.rel)  # fmt: skip
                    return _with_summary(job, summary, Status.PROCESSED, started)
                raw.seek(0)
            reader = _HashingReader(raw, on_read, hashed)
            try:
                report = pipeline.run_file(reader, job.rel, outputs.open)  # type: ignore[arg-type]
            except ProcessorError as exc:
                summary["error"] = exc.to_dict()
            except OSError:
                raise
            except Exception as exc:  # a bug in a processor must fail its file, not the worker
                summary["error"] = error_info(exc, traceback=traceback.format_exc(limit=20))
            if "provenance" in summary:
                summary["provenance"]["route"] = route_taken(pipeline)
            reader.drain()  # the whole input is hashed, failed or not
            _check_unchanged(job, st, os.fstat(raw.fileno()), reader.size)
        summary.update(sha256=reader.sha.hexdigest(), size=reader.size)
        if "error" in summary:
            outputs.discard()
            return _with_summary(job, summary, Status.FAILED, started)
        outputs.close()
    except InputChanged as exc:  # the results would describe bytes nobody can see
        outputs.discard()
        summary["error"] = error_info(exc)
        return Outcome(Status.RETRY, finish_summary(summary, Status.FAILED, started))
    except ProcessorError as exc:
        outputs.discard()
        summary["error"] = exc.to_dict()
        return _with_summary(job, summary, Status.FAILED, started)
    except OSError as exc:
        outputs.discard()
        return _not_done(finish_summary(summary, Status.FAILED, started), exc)
    finally:
        if fd >= 0:
            os.close(fd)
    summary.update(report)
    if pipeline.config.sinks and (held := _delivered(job, pipeline, outputs, summary, started)):
        return held
    temps = [(outputs.paths[s], f"{job.rel}.{s}") for s in outputs.paths]
    summary["output_files"] = [shown(final) for _, final in temps]
    return _with_summary(job, summary, Status.PROCESSED, started, temps)


def _delivered(
    job: Job, pipeline: Pipeline, outputs: _Outputs, summary: dict[str, Any], started: float
) -> Outcome | None:
    """Deliver to the sinks (`daemon.delivery`); None when every sink took its part (the
    outputs they took are then no files of results/), else the outcome of the attempt."""
    try:
        summary["deliveries"] = deliver(job, pipeline.config, outputs.paths, summary)
    except SinkDataError as exc:  # a record can never be delivered
        outputs.discard()
        summary["error"] = exc.to_dict()
        return _with_summary(job, summary, Status.FAILED, started)
    except Exception as exc:  # the sink is unavailable (held), or this time (retried)
        outputs.discard()
        return _not_done(finish_summary(summary, Status.FAILED, started), exc)
    for out in pipeline.config.outputs.values():
        if out.sink is not None and out.suffix in outputs.paths:
            _unlink(outputs.paths.pop(out.suffix))
    return None


def commit_outcomes(done: list[tuple[Job, Outcome]]) -> None:
    """Commit the results of attempts `process_file` finished, together (`commit_group`):
    each processed or failed outcome then has its outputs and summary durable in results/
    (no temps left), or becomes a retry if they could not be committed (full disk,
    results/ unwritable), or lapsed if the instance's lease ran out (shared mode)."""
    group: list[tuple[Job, Outcome]] = []
    for job, outcome in done:
        if not outcome.temps:
            continue
        if job.deadline is not None and not may_commit(job.deadline):  # a peer may take it
            for tmp, _ in outcome.temps:
                _unlink(tmp)
            outcome.status, outcome.temps = Status.LAPSED, []
            continue
        group.append((job, outcome))
    if not group:
        return
    pending = [Pending(Path(j.results_dir), j.uid, o.temps, j.rerun) for j, o in group]
    for (_, outcome), exc in zip(group, commit_group(pending, group[0][0].fsync), strict=True):
        outcome.temps = []
        if exc is not None:
            failed = _not_done(outcome.summary, exc, message=f"committing results: {exc}")
            outcome.status, outcome.summary = failed.status, failed.summary


def _with_summary(
    job: Job,
    summary: dict[str, Any],
    status: Status,
    started: float,
    temps: list[tuple[str, str]] | None = None,
) -> Outcome:
    temps = list(temps or [])
    finish_summary(summary, status, started)
    path = os.path.join(job.tmp_dir, f"{job.uid}.{job.attempt}.json")
    try:
        write_summary(path, summary)
    except OSError as exc:  # results/ full or gone: try again later
        for tmp, _ in temps:
            _unlink(tmp)
        _unlink(path)
        return _not_done(summary, exc, message=f"writing results: {exc}")
    temps.append((path, f"{job.rel}.json"))  # the summary is committed last
    return Outcome(status, summary, temps)
