"""`main.py --input PATH`: one file through the pipeline, outside the queue.

The input is only read (it is not in the queue, so it is not moved); its outputs and
summary are committed into results/ exactly as the daemon commits them, under its base
name (a visible `~N` suffix if that name's summary already exists: nothing is overwritten).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from daemon.attempt import Job
from daemon.commit import commit_results
from daemon.errors import DaemonError
from daemon.moves import first_free
from daemon.provenance import Provenance
from daemon.states import TMP_DIRNAME
from daemon.summary import Summary
from daemon.worker import process_file
from processors import LoadedPipeline


def run_single(
    path: Path,
    results: Path,
    pipeline: LoadedPipeline,
    *,
    fsync: bool,
    trace: bool,
    config: Path | None = None,
) -> Summary:
    """Process `path`; return its summary (status processed or failed). `config`: the
    file `pipeline` was read from, for the summary's provenance."""
    if not path.exists():
        raise DaemonError(f"--input {path}: no such file")
    if path.is_dir():
        raise DaemonError(f"--input {path}: is a directory (drop it into watch_dir/unprocessed/)")
    tmp_dir = results / TMP_DIRNAME
    tmp_dir.mkdir(parents=True, exist_ok=True)
    rel = first_free(path.name, lambda name: (results / f"{name}.json").exists())
    prov = Provenance.of(config, pipeline) if config is not None else None
    job = Job(uuid.uuid4().hex, rel, path.name, os.path.abspath(path), 1, str(tmp_dir), fsync,
              provenance=prov)  # fmt: skip
    outcome = process_file(job, pipeline.build(trace=trace))
    summary = outcome.summary  # a retry's is a failed one, never committed: it says why
    if summary is None:
        raise DaemonError(f"--input {path}: the attempt never started")
    if outcome.temps:
        exc = commit_results(results, job.uid, outcome.temps, fsync)
        if exc is not None:
            raise DaemonError(f"cannot write results to {results}: {exc}")
    return summary
