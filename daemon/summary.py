"""A file's summary: what one attempt at it came to, the public JSON beside its results.

`Summary` is the typed value the daemon passes around (the worker makes it, the loop,
the journal, the batches, the run's report and the webhooks read it); `to_json()` is
the one place its JSON is made, `from_json()` the one place a committed summary is read
back (recovery). The format is documented field by field in docs/reference/summary.md;
`tests/daemon/test_summary.py` pins it. An attempt's summary begins when it starts
(`Start`: names and clocks) and ends as one `Summary`: `Start.processed`, or
`Start.failed` (an error dict), or `Start.failed_by` (an exception).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from daemon.attempt import Status
from formats.names import parsed, shown, texts
from sinks import SinkError

if TYPE_CHECKING:
    from daemon.attempt import Job
    from daemon.provenance import Provenance

Error = dict[str, Any]  # a summary's `error`: `type` and `message`, and what applies

# The summary's own fields, in the order its JSON has them; the pipeline's counts
# (`Summary.counts`) come between `size` and `deliveries`.
_HEAD = ("uid", "source", "original_name", "status", "attempts", "started", "started_ts",
         "provenance", "origin", "error", "sha256", "size")  # fmt: skip
_TAIL = ("deliveries", "output_files", "duplicate_of", "first_results", "finished",
         "finished_ts", "duration_s")  # fmt: skip
_OWN = frozenset(_HEAD + _TAIL)


def iso(ts: float) -> str:
    """`ts` (seconds since the epoch) as ISO 8601 UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


@dataclass(frozen=True)
class Summary:
    """One attempt's summary. Names (`source`, `original_name`, `output_files`) are held
    as the daemon holds names (`os.fsdecode`), written `shown()` in the JSON."""

    uid: str
    source: str  # the input's path under its state folder, as processed
    original_name: str  # the path it arrived under
    status: Status  # PROCESSED or FAILED: where the input goes
    attempts: int  # the attempt that made it (0: rejected without a run)
    started_ts: float  # wall clock, seconds since the epoch (`started` is its ISO form)
    finished_ts: float
    duration_s: float  # measured on the monotonic clock, not finished_ts - started_ts
    provenance: Mapping[str, Any] | None = None  # `Provenance.as_json()`, its `route` added
    origin: Mapping[str, Any] | None = None  # a source's file (`Origin.as_json()`)
    error: Error | None = None
    sha256: str | None = None  # of the bytes read (None: not read)
    size: int | None = None
    counts: Mapping[str, Any] = field(default_factory=dict)  # what the pipeline reports
    deliveries: tuple[Mapping[str, Any], ...] | None = None  # one per sink's delivery
    output_files: tuple[str, ...] | None = None  # under results/, the summary not included
    duplicate_of: str | None = None  # --skip-duplicates: the uid of the first input...
    first_results: Mapping[str, Any] | None = None  # ...and where its results are

    def __post_init__(self) -> None:
        if self.status not in (Status.PROCESSED, Status.FAILED):
            raise ValueError(f"a summary's status is processed or failed, not {self.status}")

    @property
    def ok(self) -> bool:
        return self.status is Status.PROCESSED

    def with_error(self, error: Error) -> Summary:
        """This attempt failed after all (its results could not be committed…)."""
        return replace(self, status=Status.FAILED, error=error)

    def to_json(self) -> dict[str, Any]:
        """The summary's JSON object, its keys always in the same order; an absent
        field (None) is left out."""
        values: dict[str, Any] = {
            "uid": self.uid,
            "source": shown(self.source),
            "original_name": shown(self.original_name),
            "status": self.status.value,
            "attempts": self.attempts,
            "started": iso(self.started_ts),
            "started_ts": self.started_ts,
            "provenance": _plain(self.provenance),
            "origin": _plain(self.origin),
            "error": self.error,
            "sha256": self.sha256,
            "size": self.size,
            "deliveries": None if self.deliveries is None else [dict(d) for d in self.deliveries],
            "output_files": None if self.output_files is None
            else [shown(name) for name in self.output_files],
            "duplicate_of": self.duplicate_of,
            "first_results": _plain(self.first_results),
            "finished": iso(self.finished_ts),
            "finished_ts": self.finished_ts,
            "duration_s": self.duration_s,
        }  # fmt: skip
        out = {k: values[k] for k in _HEAD if values[k] is not None}
        out.update((k, v) for k, v in self.counts.items() if k not in _OWN)
        out.update((k, values[k]) for k in _TAIL if values[k] is not None)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """A summary as committed (recovery reads them back). Raises KeyError, TypeError
        or ValueError for an object that is not one (no uid, source or final status); a
        missing clock reads 0 (a summary written by hand or by an older folderd)."""
        files = data.get("output_files")
        deliveries = data.get("deliveries")
        started = float(data.get("started_ts") or 0.0)
        return cls(
            uid=str(data["uid"]),
            source=parsed(str(data["source"])),
            original_name=parsed(str(data.get("original_name", data["source"]))),
            status=Status(data["status"]),
            attempts=int(data.get("attempts") or 0),
            started_ts=started,
            finished_ts=float(data.get("finished_ts") or 0.0),
            duration_s=float(data.get("duration_s") or 0.0),
            provenance=data.get("provenance"),
            origin=data.get("origin"),
            error=data.get("error"),
            sha256=data.get("sha256"),
            size=data.get("size"),
            counts={k: v for k, v in data.items() if k not in _OWN},
            deliveries=None if deliveries is None else tuple(deliveries),
            output_files=None if files is None else tuple(parsed(str(f)) for f in files),
            duplicate_of=data.get("duplicate_of"),
            first_results=data.get("first_results"),
        )


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


@dataclass(frozen=True)
class Start:
    """An attempt's summary as it starts: who, and both clocks (the wall's for its
    timestamps; the monotonic one for its duration, which NTP or a VM restore cannot
    step back)."""

    uid: str
    source: str
    original_name: str
    attempts: int
    started_ts: float
    started: float  # monotonic
    provenance: Mapping[str, Any] | None = None
    origin: Mapping[str, Any] | None = None

    @classmethod
    def now(
        cls,
        uid: str,
        source: str,
        original_name: str,
        attempts: int,
        provenance: Provenance | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> Start:
        started = time.monotonic()
        return cls(uid, source, original_name, attempts, time.time(), started,
                   provenance.as_json() if provenance is not None else None, origin)  # fmt: skip

    @classmethod
    def of(cls, job: Job) -> Start:
        """An attempt at `job` starting now."""
        origin = job.origin.as_json() if job.origin is not None else None
        return cls.now(job.uid, job.rel, job.original, job.attempt, job.provenance, origin)

    def end(self, status: Status, **fields: Any) -> Summary:
        """The summary of this attempt, ending now."""
        finished = time.time()
        return Summary(
            self.uid, self.source, self.original_name, status, self.attempts,
            self.started_ts, finished, round(max(0.0, time.monotonic() - self.started), 6),
            provenance=self.provenance, origin=self.origin, **fields,
        )  # fmt: skip

    def processed(self, **fields: Any) -> Summary:
        return self.end(Status.PROCESSED, **fields)

    def failed(self, error: Error, **fields: Any) -> Summary:
        return self.end(Status.FAILED, error=error, **fields)

    def failed_by(self, exc: BaseException, **extra: Any) -> Summary:
        """Failed by an exception (`error_info`): `extra` goes into its error."""
        return self.failed(error_info(exc, **extra))


def given_up(
    uid: str,
    rel: str,
    original: str,
    attempt: int,
    size: int,
    error: Error,
    provenance: Provenance | None = None,
    origin: Mapping[str, Any] | None = None,
) -> Summary:
    """The summary of a file that failed without a worker's outcome (rejected, gave up)."""
    start = Start.now(uid, rel, original, attempt, provenance, origin)
    return start.failed(error, size=size, output_files=())


def error_info(exc: BaseException, **extra: Any) -> Error:
    """A summary's `error` for `exc`: its type and message (an OSError's errno and
    strerror, a sink's name), `extra` added."""
    info: Error = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, OSError) and exc.strerror:
        info["message"] = f"[errno {exc.errno}] {exc.strerror}"
    if isinstance(exc, SinkError):
        info["sink"] = exc.sink
    info.update(extra)
    return info


def write_summary(path: str, summary: Summary) -> None:
    """A summary's temp file (`commit_results` syncs it with the outputs)."""
    option = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    data = summary.to_json()
    try:
        raw = orjson.dumps(data, option=option)
    except TypeError:  # a message holding a name that is not UTF-8
        raw = orjson.dumps(texts(data), option=option)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(raw)
        while view:  # a write to a regular file may still be short
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
