"""Recovery at start: a file a dead run left in underprocess/ is moved on when its last
attempt had committed its results, and processed again otherwise."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from daemon.identity import single_uid
from daemon.journal import Journal
from daemon.recovery import recover
from daemon.states import FileRef, Folders, State


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    f = Folders(tmp_path / "w", tmp_path / "r")
    f.create()
    return f


def _journal(folders: Folders) -> Journal:
    Journal(folders.journal).close()  # not a new one: nothing is rebuilt from results/
    return Journal(folders.journal)


def _claimed(folders: Folders, name: str, data: bytes) -> None:
    (folders.of(State.CLAIMED) / name).write_bytes(data)


def _summary(folders: Folders, name: str, uid: str, data: bytes, began: float) -> None:
    summary = {"uid": uid, "source": name, "original_name": name, "status": "processed",
               "attempts": 1, "started_ts": began, "finished_ts": began + 0.01,
               "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
               "output_files": []}  # fmt: skip
    Path(folders.summary_path(name)).write_text(json.dumps(summary))


def test_a_committed_attempt_is_moved_on_and_an_uncommitted_one_runs_again(
    folders: Folders,
) -> None:
    journal = _journal(folders)
    for name in ("done.log", "half.log", "changed.log"):
        ref = FileRef(name.replace(".log", "").ljust(32, "0"), name, State.CLAIMED, 1, name, 2, 1)
        journal.add(ref)
        journal.transition(ref, State.QUEUED)  # stamps `started`
        _claimed(folders, name, b"x\n")
    journal.flush()
    began = time.time()
    _summary(folders, "done.log", "done".ljust(32, "0"), b"x\n", began)
    _summary(folders, "changed.log", "changed".ljust(32, "0"), b"y\n", began)  # other bytes
    left = {r.ref.rel: r for r in recover(folders, journal)}
    assert left["done.log"].committed is not None
    assert left["half.log"].committed is None
    assert left["changed.log"].committed is None


def test_a_claim_the_journal_never_heard_of_is_recognised_by_its_summary(
    folders: Folders,
) -> None:
    # Killed within one journal commit of the claim: no row, but the results are there.
    journal = _journal(folders)
    _claimed(folders, "quick.log", b"x\n")
    _summary(folders, "quick.log", "q" * 32, b"x\n", time.time())
    (left,) = recover(folders, journal)
    assert left.committed is not None and left.ref.uid == "q" * 32


def test_a_claim_the_journal_lost_before_its_summary_runs_again_under_its_uid(
    folders: Folders,
) -> None:
    # Killed after the file's rows went to a database, before its summary was written and
    # before the journal heard of the claim: it runs again under the uid its rows were
    # delivered under, so they are replaced, not added to (a random uid here doubled them).
    journal = _journal(folders)
    src = folders.of(State.QUEUED) / "s4.log"
    src.write_bytes(b"x\n")
    delivered_as = single_uid(os.stat(src), journal.get)  # as Claimer.queued_ref makes it
    os.rename(src, folders.of(State.CLAIMED) / "s4.log")
    (left,) = recover(folders, journal, functools.partial(single_uid, known=journal.get))
    assert left.committed is None and left.ref.uid == delivered_as
    # once the journal knows that uid, the same bytes moved back by hand are a new input
    journal.flush()
    assert single_uid(os.stat(folders.of(State.CLAIMED) / "s4.log"), journal.get) != delivered_as


def test_the_summary_of_an_attempt_before_a_requeue_does_not_count(folders: Folders) -> None:
    # Failed, requeued (the journal heard), claimed again and killed before the claim was
    # journalled: the failed summary under the name is the earlier attempt's.
    journal = _journal(folders)
    _summary(folders, "again.log", "a" * 32, b"x\n", time.time() - 60)
    ref = FileRef("a" * 32, "again.log", State.FAILED, 1, "again.log", 2, 1)
    journal.add(ref)
    ref.state = State.QUEUED
    journal.transition(ref, State.FAILED, reason="requeued")
    journal.flush()
    _claimed(folders, "again.log", b"x\n")
    (left,) = recover(folders, journal)
    assert left.committed is None
