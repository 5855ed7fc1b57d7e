"""One file through the pipeline, in a worker process: `process_file()`.

It reads the claimed input (never following a symlink, never opening anything but a
regular file), hashes it while the pipeline streams it, writes every output and the
summary to temp files under `results/.folderd-tmp/` (not synced yet), delivers to the
configured sinks in between (`daemon.delivery`: the outputs from their temp files, then
the input) and returns an `Outcome`: the temps to commit (`daemon.worker.committer`), or
why it failed. The one-off runs (`daemon.oneoff`) call it too.
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
from dataclasses import replace
from typing import IO, Any

import structlog

from config.pipeline import is_output_suffix
from daemon.attempt import Job, Outcome, Status
from daemon.commit import Temp
from daemon.delivery import deliver
from daemon.duplicates import first_match
from daemon.faults import Fault, cause_of, classify
from daemon.provenance import route_taken
from daemon.settle import signature
from daemon.states import Claimed
from daemon.summary import Start, Summary, error_info, write_summary
from processors import Pipeline, ProcessorError
from sinks import SinkDataError

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


def not_done(summary: Summary, exc: BaseException, **extra: Any) -> Outcome:
    """An attempt cut short by something other than the file's data: a transient error is
    retried; an environment error (a full disk…) is held, not counted (`daemon.faults`).
    Its summary is a failed one, never committed: it says why."""
    if classify(exc) is Fault.ENVIRONMENT:
        return Outcome(
            Status.ENVIRONMENT, summary.with_error(error_info(exc, cause=cause_of(exc), **extra))
        )
    return Outcome(Status.RETRY, summary.with_error(error_info(exc, **extra)))


class InputChanged(Exception):
    """The input is not what was claimed, or changed while it was read."""


def _check_unchanged(job: Job, opened: os.stat_result, end: os.stat_result, read: int) -> None:
    if job.claimed is not None and job.claimed != Claimed.of(opened):
        raise InputChanged(f"changed after it was claimed (size {job.claimed.size} -> "
                           f"{opened.st_size} bytes)")  # fmt: skip
    if signature(end) != signature(opened) or read != opened.st_size:
        raise InputChanged(f"changed while processed ({opened.st_size} bytes at open, "
                           f"{read} read, {end.st_size} at the end)")  # fmt: skip


def process_file(job: Job, pipeline: Pipeline, on_read: OnRead | None = None) -> Outcome:
    """Run one attempt; never raises for anything the file or the pipeline did."""
    start = Start.of(job)
    found: dict[str, Any] = {}  # the summary's fields, as the attempt finds them
    outputs = _Outputs(job)
    if job.origin is not None:  # a source may have routes and deliver of its own
        pipeline = pipeline.variant(job.origin.source)
    try:
        fd = os.open(job.src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        gone = "the file disappeared before it was read"
        return Outcome(Status.VANISHED, start.failed_by(exc, message=gone))
    except OSError as exc:
        return not_done(start.end(Status.FAILED), exc)
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
                    log.info("file_duplicate", path=job.rel, duplicate_of=first.uid,
                             first=first.rel)  # fmt: skip
                    duplicate = start.processed(sha256=first.sha256, size=size, output_files=(),
                                                **first.pointer())  # fmt: skip
                    return _with_summary(job, duplicate)
                raw.seek(0)
            reader = _HashingReader(raw, on_read, hashed)
            try:
                report = pipeline.run_file(reader, job.rel, outputs.open)  # type: ignore[arg-type]
            except ProcessorError as exc:
                found["error"] = exc.to_dict()
            except OSError:
                raise
            except Exception as exc:  # a bug in a processor must fail its file, not the worker
                found["error"] = error_info(exc, traceback=traceback.format_exc(limit=20))
            if start.provenance is not None:
                start = replace(start, provenance={**start.provenance,
                                                   "route": route_taken(pipeline)})  # fmt: skip
            reader.drain()  # the whole input is hashed, failed or not
            _check_unchanged(job, st, os.fstat(raw.fileno()), reader.size)
        found.update(sha256=reader.sha.hexdigest(), size=reader.size)
        if "error" in found:
            outputs.discard()
            return _with_summary(job, start.end(Status.FAILED, **found))
        outputs.close()
    except InputChanged as exc:  # the results would describe bytes nobody can see
        outputs.discard()
        return Outcome(Status.RETRY, start.end(Status.FAILED, **found).with_error(error_info(exc)))
    except ProcessorError as exc:
        outputs.discard()
        return _with_summary(job, start.end(Status.FAILED, **found).with_error(exc.to_dict()))
    except OSError as exc:
        outputs.discard()
        return not_done(start.end(Status.FAILED, **found), exc)
    finally:
        if fd >= 0:
            os.close(fd)
    found["counts"] = report
    if pipeline.config.sinks and (held := _delivered(job, pipeline, outputs, start, found)):
        return held
    temps = [Temp(outputs.paths[s], f"{job.rel}.{s}") for s in outputs.paths]
    done = start.processed(output_files=tuple(final for _, final in temps), **found)
    return _with_summary(job, done, temps)


def _delivered(
    job: Job, pipeline: Pipeline, outputs: _Outputs, start: Start, found: dict[str, Any]
) -> Outcome | None:
    """Deliver to the sinks (`daemon.delivery`); None when every sink took its part (the
    outputs they took are then no files of results/, and `found` has the deliveries),
    else the outcome of the attempt."""
    metadata = found["counts"].get("metadata") or {}
    try:
        deliveries = deliver(job, pipeline.config, outputs.paths, metadata, found["sha256"])
    except SinkDataError as exc:  # a record can never be delivered
        outputs.discard()
        return _with_summary(job, start.failed(exc.to_dict(), **found))
    except Exception as exc:  # the sink is unavailable (held), or this time (retried)
        outputs.discard()
        return not_done(start.end(Status.FAILED, **found), exc)
    found["deliveries"] = tuple(deliveries)
    for out in pipeline.config.outputs.values():
        if out.sink is not None and out.suffix in outputs.paths:
            _unlink(outputs.paths.pop(out.suffix))
    return None


def _with_summary(job: Job, summary: Summary, temps: list[Temp] | None = None) -> Outcome:
    """The attempt's outcome, its summary written beside its outputs' temps."""
    temps = list(temps or [])
    path = os.path.join(job.tmp_dir, f"{job.uid}.{job.attempt}.json")
    try:
        write_summary(path, summary)
    except OSError as exc:  # results/ full or gone: try again later
        for tmp, _ in temps:
            _unlink(tmp)
        _unlink(path)
        return not_done(summary, exc, message=f"writing results: {exc}")
    temps.append(Temp(path, f"{job.rel}.json"))  # the summary is committed last
    return Outcome(summary.status, summary, temps)
