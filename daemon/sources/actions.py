"""What the dashboard and the command line may ask of the sources, on the loop's thread:
start a job (a declared source walked now, or any folder under --source-roots, which then
becomes an ad-hoc source: never watched, walked by its jobs), cancel one, requeue a
failed version or reprocess a processed one."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from config.sources import SourceConfig, source_name
from daemon.errors import DaemonError
from daemon.journal import Row
from daemon.sources.runtime import Runtime, Sources, uid_of
from daemon.sources.scanner import ScanRequest
from daemon.sources.store import EntryState
from daemon.states import State
from formats.names import parsed

log = structlog.get_logger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class SourceRefused(DaemonError):
    """An action on the sources cannot be done; `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def start_job(
    sources: Sources,
    roots: tuple[Path, ...],
    *,
    source: str | None = None,
    path: str | None = None,
    glob: str | None = None,
    name: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """A job walking `source` (a name) or the folder `path` now; (the job, True if new).
    A source that has a job running answers with that job."""
    if glob is not None and (not glob or "\0" in glob or len(glob) > 1024):
        raise SourceRefused("glob must be a non-empty pattern", 400)
    if source is not None:
        rt = sources.by_name.get(source)
        if rt is None:
            raise SourceRefused(f"no source named {source!r}", 404)
    elif path is not None:
        rt = _folder(sources, roots, path, name)
    else:
        raise SourceRefused('send {"source": NAME} or {"path": FOLDER}, and "glob" if any', 400)
    if rt.refused or rt.error:
        raise SourceRefused(f"source {rt.name!r} is stopped: {rt.error}", 409)
    running = sources.jobs.running_for(rt.name)
    if running is not None:
        return running.as_dict(), False
    job = sources.jobs.create(rt.name, glob)
    sources.scanner.request(ScanRequest(rt.config, rt.root, job=job.id, glob=glob))
    log.info("source_job_started", job=job.id, source=rt.name, path=rt.root, glob=glob)
    return job.as_dict(), True


def _folder(sources: Sources, roots: tuple[Path, ...], path: str, name: str | None) -> Runtime:
    """The source of the folder `path`: a declared or ad-hoc one with that folder, else a
    new ad-hoc one (its name given, or made of the folder's)."""
    shown_path, path = path, parsed(path)  # names cross the API as shown() writes them
    if not os.path.isabs(path) or "\0" in path:
        raise SourceRefused(f"{shown_path!r} is not an absolute folder path", 400)
    real = os.path.realpath(path)
    allowed = [os.path.realpath(r) for r in roots]
    if not allowed:
        raise SourceRefused("jobs for folders need --source-roots (none is set)", 403)
    if not any(real == r or real.startswith(r.rstrip("/") + "/") for r in allowed):
        raise SourceRefused(f"{shown_path} is not under --source-roots", 403)
    if not os.path.isdir(real):
        raise SourceRefused(f"no folder {shown_path}", 404)
    found = next((rt for rt in sources.by_name.values() if rt.root == real), None)
    if found is not None:
        return found
    if name is None:
        stem = _UNSAFE.sub("_", os.path.basename(real)).strip("._-")[:40] or "folder"
        name = f"{stem}-{hashlib.sha256(os.fsencode(real)).hexdigest()[:6]}"
    try:
        source_name(name)
    except ValueError as exc:
        raise SourceRefused(f"name: {exc}", 400) from None
    if name in sources.by_name:
        raise SourceRefused(f"the name {name!r} is another folder's source", 409)
    sources.store.add_adhoc(name, real)
    sources.add(SourceConfig(name=name, path=Path(real), adhoc=True))
    return sources.by_name[name]


def cancel_job(sources: Sources, job_id: int) -> dict[str, Any]:
    """Stop counting job `job_id`; an ad-hoc source's files it still waited for are not
    processed (a declared source goes on with its own)."""
    job = sources.jobs.by_id.get(job_id)
    if job is None:
        raise SourceRefused(f"no job {job_id}", 404)
    if not job.active:
        raise SourceRefused(f"job {job_id} is {job.state} already", 409)
    sources.jobs.cancel(job)
    sources.scanner.cancelled.add(job_id)
    rt = sources.by_name.get(job.source)
    if rt is not None and rt.config.adhoc:
        for e in list(sources.store.job_entries(job_id)):
            if e.state is EntryState.PENDING:
                sources.write(rt, e, replace(e, state=EntryState.CANCELLED))
    log.info("source_job_cancelled", job=job_id, source=job.source)
    return job.as_dict()


def owner(sources: Sources, row: Row) -> Runtime | None:
    """The source a journal row's file belongs to (its uid is that source's and path's)."""
    for rt in sources.by_name.values():
        if row.uid == uid_of(rt.name, row.original):
            return rt
    return None


def requeue(sources: Sources, rt: Runtime, row: Row, reason: str, reprocess: bool = False) -> str:
    """A failed version runs again (attempts afresh); with `reprocess`, a processed one too
    (the dashboard's and `--reprocess`'s flow: the same version of the file, run under
    the config in use now; its results and deliveries replace the last run's, as a new
    version's do). Its name in the source."""
    e = sources.store.get(rt.name, row.original)
    allowed = (EntryState.FAILED, EntryState.DONE) if reprocess else (EntryState.FAILED,)
    if e is None or e.state not in allowed:
        state = e.state.value if e is not None else "gone"
        which = " or ".join("processed" if s is EntryState.DONE else s.value for s in allowed)
        verb = "reprocessed" if reprocess else "requeued"
        raise SourceRefused(f"only {which} files can be {verb} (this one is {state})", 409)
    sources.jobs.reopened(e)  # a job counting it counts it again once it ends
    sources.write(rt, e, replace(e, state=EntryState.PENDING, due=0.0, attempts=0))
    sources.journal.set_state(row.uid, State.QUEUED, reason)
    log.info("source_version_requeued", source=rt.name, path=e.rel, reason=reason)
    return e.rel
