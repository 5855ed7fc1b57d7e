"""One file through the pipeline with nothing moved and nothing kept: `main.py --test` and
the dashboard's Preview.

It is the worker's own code path — `daemon.worker.process_file` on a `Job` — pointed at a
temp directory: the outputs and the summary are written there, read back, and removed with
it. Sinks are left out (their outputs are written as files instead, so they can be seen),
so a dry run never delivers anything to a database or a bucket.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from daemon.attempt import Job
from daemon.summary import Summary
from daemon.worker import process_file
from processors import LoadedPipeline, Pipeline, ProcessorError, file_routes, readers


@dataclass
class DryRun:
    """What one dry run produced."""

    summary: Summary  # the summary a worker would have committed
    route: int | None  # index of the route that matched (None: none did)
    outputs: dict[str, list[str]]  # per output tag, its lines (the first `max_lines`)


def dry_pipeline(loaded: LoadedPipeline, trace: bool = False) -> Pipeline:
    """The runnable pipeline of `loaded` with every sink left out."""
    config = loaded.config
    outputs = {tag: dataclasses.replace(o, sink=None) for tag, o in config.outputs.items()}
    bare = dataclasses.replace(config, outputs=outputs, deliver=())
    return dataclasses.replace(loaded, config=bare).build(trace=trace)


def matched_route(pipeline: Pipeline, src: Path, name: str) -> int | None:
    """Which route a file named `name` with the contents of `src` takes."""
    try:
        with open(src, "rb") as f:
            route, _ = file_routes.select(pipeline.config.routes, name, readers.Source(f).head)
    except ProcessorError:
        return None
    return pipeline.config.routes.index(route)


def dry_run(pipeline: Pipeline, src: Path, name: str, max_lines: int | None = None) -> DryRun:
    """Run `src` as if it were the file `name` (a relative path); keep nothing."""
    with tempfile.TemporaryDirectory(prefix="folderd-dryrun-") as tmp:
        job = Job(uuid.uuid4().hex, name, name.rsplit("/", 1)[-1], os.path.abspath(src), 1,
                  tmp, fsync=False)  # fmt: skip
        outcome = process_file(job, pipeline)
        by_name = {final: temp for temp, final in outcome.temps}
        outputs = {}
        for tag, out in pipeline.config.outputs.items():
            temp = by_name.get(f"{name}.{out.suffix}")
            if temp is not None:
                outputs[tag] = _read_lines(temp, max_lines)
    if outcome.summary is None:
        raise ProcessorError("the dry run never started")
    return DryRun(outcome.summary, matched_route(pipeline, src, name), outputs)


def _read_lines(path: str, limit: int | None) -> list[str]:
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.removesuffix("\n") for line in itertools.islice(f, limit)]
