"""Delivering one file to its sinks, in its worker, while it commits.

After the pipeline wrote a file's outputs to temp files (closed, fsynced) and before its
summary is written: each output with a `sink` is delivered from its temp file (streamed:
memory does not grow with the output), then the input itself to each `deliver` sink.
Every delivery replaces this input's earlier one (rows by `uid`, objects by key), so the
re-run that follows a crash at any point leaves one copy. The connections are this worker
process's, opened on first use and kept for the files that follow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from config.pipeline import PipelineConfig
from config.sinks import S3SinkConfig, SqlSinkConfig
from sinks import SinkDataError, Targets
from sinks.keys import object_key

if TYPE_CHECKING:
    from daemon.attempt import Job

log = structlog.get_logger(__name__)

_targets = Targets()  # this worker process's sink connections
NOTES_DIRNAME = ".folderd-multipart"  # under results/: multipart uploads that may be unfinished


def _key(sink: S3SinkConfig, metadata: dict[str, str], name: str) -> str:
    return object_key(sink.name, sink.prefix, metadata, name)


def deliver(
    job: Job,
    config: PipelineConfig,
    temps: dict[str, str],
    metadata: dict[str, str],
    input_sha256: str,
) -> list[dict[str, Any]]:
    """Deliver the outputs in `temps` (suffix -> temp path) and the input (of `input_sha256`);
    `metadata`, the route's named groups, may name object keys. Return what each
    delivery reports. Raises `SinkDataError` (the file fails), `SinkUnavailable` (it waits)
    or `SinkError` (this attempt: retried).

    What can fail a file comes first, so a failed file leaves no delivery behind: every
    object key (a prefix may name a group the route did not capture), then the tables (a
    type violation rolls its own transaction back, and the rows earlier tables took for
    this input are deleted again), and only then the uploads."""
    _targets.keep(config.sinks)
    tables: list[tuple[SqlSinkConfig, str]] = []
    uploads: list[tuple[S3SinkConfig, str, str, str | None]] = []  # sink, path, key, sha256
    for output in config.outputs.values():
        sink, path = output.sink, temps.get(output.suffix)
        if isinstance(sink, SqlSinkConfig):  # no lines: still replaces earlier rows
            tables.append((sink, path or os.devnull))
        elif isinstance(sink, S3SinkConfig) and path is not None:
            uploads.append((sink, path, _key(sink, metadata, f"{job.rel}.{output.suffix}"), None))
    for sink in config.deliver:  # a mirror: keyed by the name the input was dropped under
        key = _key(sink, metadata, job.original or job.rel)
        uploads.append((sink, job.src, key, input_sha256))
    done = []
    for sink, path in tables:
        try:
            done.append(_targets.rows(sink, path, job.uid, job.rel))
        except SinkDataError:
            for taken, _ in tables[: len(done)]:
                _targets.retract(taken, job.uid)
            raise
    meta = {"uid": job.uid, "input-sha256": input_sha256}
    notes = Path(job.results_dir) / NOTES_DIRNAME
    for sink, path, key, sha256 in uploads:
        try:
            done.append(_targets.put(sink, path, key, sha256, meta, notes))
        except SinkDataError:  # the server takes no object of that name: the rows go too
            for taken, _ in tables:
                _targets.retract(taken, job.uid)
            raise
    reports = [d.to_dict() for d in done]
    for report in reports:
        log.info("sink_delivered", path=job.rel, **report)
    return reports
