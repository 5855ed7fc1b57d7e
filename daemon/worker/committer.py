"""A worker's commit thread: its finished attempts' results made durable in groups.

The worker's main thread runs the pipeline and queues each finished attempt here; this
thread commits everything queued as one group (`commit_outcomes`, `daemon.commit`: the
syncs, unless --no-fsync, the renames and directory fsyncs, one round for all of them)
and sends the outcomes back in order. While it waits on one group's syncs the main
thread runs the next file, which joins the next group: in a burst files share their
syncs, and a lone file is committed as soon as it is finished. So the commits happen in
the workers, in parallel, and the loop only moves an input once its outcome, results
already durable, comes back.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from daemon.attempt import FromWorker, Job, Outcome, Status
from daemon.commit import Pending, commit_group
from daemon.shared.lease import may_commit
from daemon.worker.run import not_done


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
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            outcome.status, outcome.temps = Status.LAPSED, []
            continue
        group.append((job, outcome))
    if not group:
        return
    pending = [Pending(Path(j.results_dir), j.uid, o.temps, j.rerun) for j, o in group]
    for (_, outcome), exc in zip(group, commit_group(pending, group[0][0].fsync), strict=True):
        outcome.temps = []
        if exc is not None and outcome.summary is not None:
            failed = not_done(outcome.summary, exc, message=f"committing results: {exc}")
            outcome.status, outcome.summary = failed.status, failed.summary


class Committer:
    """The commit thread (see the module's docstring): `put` a finished attempt, `close`
    to commit and send what is queued, then stop. A lone file is never held back
    waiting for company."""

    def __init__(self, send: Callable[[FromWorker], bool]) -> None:
        self._send = send
        self._queue: list[tuple[Job, Outcome]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="folderd-commit", daemon=True)
        self._thread.start()

    def put(self, job: Job, outcome: Outcome) -> None:
        with self._cond:
            self._queue.append((job, outcome))
            self._cond.notify()

    def close(self) -> None:
        """Commit and send what is queued, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                group, self._queue = self._queue, []
            if not group:
                return
            commit_outcomes(group)
            for _, outcome in group:
                if not self._send(outcome):
                    return  # the daemon is gone
