"""Ready markers: a settled file waits until its marker says it is complete.

With `markers.file` (`{name}.done`, `{stem}.ok`…) a file of unprocessed/ is claimed only
once its marker is in the same folder; with `markers.folder` (`_SUCCESS`) a file of a
first-level folder is claimed only once that folder's marker opened a batch of which it
is a member (`daemon.batches`). A marker never is an input itself. The `Gate` sits
between settling and the claim queue (`daemon.intake`): a settled file it holds waits
here, listed with its age ("waiting for marker"), until a marker event, or the tick's
look, releases it. A file's marker is removed once the file is claimed (it is consumed
with it; kept, it would make a later file of the same name claimable at once).

A file that comes back to unprocessed/ (returned at shutdown, requeued, reprocessed) has
passed its gate already: it does not wait for a marker again.

The loop's cost stays bounded however many files wait: a marker event looks only at the
files of its folder, and the tick's look (for markers whose event was lost) checks at most
SWEEP held files, taking turns, so 100,000 files waiting for a batch's `_SUCCESS` cost the
loop a few hundred lstat calls a second, not 100,000; the journal is asked whether a file
is coming back once, when it settles, not at every look.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from config.markers import MarkersConfig
from daemon.batches import Batches
from daemon.recovery import walk_files
from daemon.settle import Signature
from formats.names import shown

log = structlog.get_logger(__name__)

Released = tuple[str, Signature, int]  # (path, signature, priority): ready to be claimed
SHOWN = 200  # files listed as waiting
SWEEP = 500  # held files the tick looks at, taking turns


@dataclass
class _Held:
    sig: Signature
    priority: int
    since: float  # wall clock: when it settled and began to wait
    why: str  # what it waits for, as shown


class Gate:
    def __init__(
        self,
        queue_dir: str,
        config: MarkersConfig,
        batches: Batches,
        returning: Callable[[str], bool],
        ignored: Callable[[str], str | None],
    ) -> None:
        self.queue_dir = queue_dir
        self.config = config
        self.batches = batches
        self._returning = returning  # whether a name is a file sent back (no gate again)
        self._ignored = ignored
        self._held: dict[str, _Held] = {}
        self._orphans: dict[str, float] = {}  # marker path -> first seen, nothing waits for it
        self._view: tuple[dict[str, Any], ...] = ()
        self._dirty = False
        self._by_marker: dict[str, set[str]] = {}  # marker path -> the held files it releases
        self._turns: list[str] = []  # the held files the tick has still to look at, in turn
        self._orphan_turns: list[str] = []

    @property
    def active(self) -> bool:
        return self.config.file is not None or self.config.folder is not None

    def rel(self, path: str) -> str:
        return path[len(self.queue_dir) + 1 :]

    def is_marker(self, path: str) -> bool:
        name = os.path.basename(path)
        return self.config.is_file_marker(name) or name == self.config.folder

    def waits_for(self, path: str) -> str | None:
        """What `path` waits for before it may be claimed, or None."""
        return None if self._returning(self.rel(path)) else self._blocked(path)

    def _blocked(self, path: str) -> str | None:
        """What a file that is not coming back waits for, or None."""
        rel = self.rel(path)
        folder, slash, _ = rel.partition("/")
        if self.config.folder is not None and slash and not self.batches.admits(folder, rel):
            return f"batch marker {folder}/{self.config.folder}"
        marker = self.config.marker_of(os.path.basename(path))
        if marker is not None and not os.path.lexists(os.path.join(os.path.dirname(path), marker)):
            return "marker " + (f"{os.path.dirname(rel)}/{marker}" if "/" in rel else marker)
        return None

    def hold(self, path: str, sig: Signature, priority: int) -> bool:
        """Settled: True (and held) if it must wait for a marker, False if it may go on."""
        why = self.waits_for(path)
        if why is None:
            self._drop(path)
            return False
        before = self._held.get(path)
        self._held[path] = _Held(sig, priority, before.since if before else time.time(), shown(why))
        marker = self._marker_path(path)
        if marker is not None:
            self._by_marker.setdefault(marker, set()).add(path)
        if before is None:
            log.info("file_waiting_for_marker", path=self.rel(path), waits_for=why)
        self._dirty = True
        return True

    def marker_seen(self, path: str) -> list[Released]:
        """A marker appeared (or a scan found one): the files it releases. A folder's marker
        opens that folder's batch first (`daemon.batches`)."""
        rel = self.rel(path)
        name = os.path.basename(path)
        folder, slash, rest = rel.partition("/")
        if name == self.config.folder and slash and "/" not in rest:
            members = self._members(folder)
            self.batches.open(folder, members, self.rel(path))
        if name == self.config.folder:  # a batch's files may be in sub-folders
            released = self.release(os.path.dirname(path) + os.sep)
        else:  # only the files that wait for this marker, however many others wait
            released = self._release(sorted(self._by_marker.get(path, ())))
        if not released and path not in self._orphans and not self._marks_batch(rel):
            self._orphans[path] = time.time()
            self._dirty = True
        elif released:
            self._orphans.pop(path, None)
        return released

    def _marks_batch(self, rel: str) -> bool:
        folder, slash, rest = rel.partition("/")
        return bool(slash) and "/" not in rest and self.batches.is_open(folder)

    def _members(self, folder: str) -> list[str]:
        """The files of `folder` a batch opened now is made of (markers, hidden and
        ignored files left out)."""
        top = os.path.join(self.queue_dir, folder)
        found = []
        for sub in walk_files(Path(top)) if os.path.isdir(top) else ():
            rel = f"{folder}/{sub}"
            if not self.is_marker(rel) and self._ignored(rel) is None:
                found.append(rel)
        return found

    def release(self, under: str = "") -> list[Released]:
        """The held files (those under `under`, if given) that may go on now."""
        return self._release([p for p in self._held if p.startswith(under)])

    def _marker_path(self, path: str) -> str | None:
        marker = self.config.marker_of(os.path.basename(path))
        return None if marker is None else os.path.join(os.path.dirname(path), marker)

    def _drop(self, path: str) -> bool:
        """`path` held no longer; whether it was."""
        if self._held.pop(path, None) is None:
            return False
        marker = self._marker_path(path)
        if marker is not None and (waiting := self._by_marker.get(marker)) is not None:
            waiting.discard(path)
            if not waiting:
                del self._by_marker[marker]
        return True

    def _release(self, paths: list[str]) -> list[Released]:
        out = []
        for path in paths:
            held = self._held.get(path)
            if held is not None and self._blocked(path) is None:
                self._drop(path)
                out.append((path, held.sig, held.priority))
                log.info("file_marker_found", path=self.rel(path),
                         waited_s=round(time.time() - held.since, 3))  # fmt: skip
        if out:
            self._dirty = True
        return out

    def forget(self, path: str) -> None:
        """`path` left unprocessed/ (deleted, cancelled, moved away)."""
        if self._drop(path) or self._orphans.pop(path, None) is not None:
            self._dirty = True
        self.batches.gone(self.rel(path))

    def claimed(self, path: str, uid: str) -> None:
        """`path` was claimed as `uid`: its marker is consumed; its batch told."""
        self.batches.claimed(self.rel(path), uid)
        marker = self.config.marker_of(os.path.basename(path))
        if marker is None:
            return
        marker_path = os.path.join(os.path.dirname(path), marker)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker_path)
            log.info("marker_consumed", path=self.rel(marker_path), file=self.rel(path))
        if self._orphans.pop(marker_path, None) is not None:
            self._dirty = True

    def tick(self) -> list[Released]:
        """Once a tick: release the files whose marker came without an event (polling, a
        lost event), drop orphan markers that are gone, publish the list."""
        if not self._turns:
            self._turns = list(self._held)
        released = self._release(self._turns[-SWEEP:])
        del self._turns[-SWEEP:]
        if not self._orphan_turns:
            self._orphan_turns = list(self._orphans)
        for marker in self._orphan_turns[-SWEEP:]:
            if marker in self._orphans and not os.path.lexists(marker):
                del self._orphans[marker]
                self._dirty = True
        del self._orphan_turns[-SWEEP:]
        if self._dirty:
            self._dirty = False
            self._view = self._listing()
        return released

    def _listing(self) -> tuple[dict[str, Any], ...]:
        now = time.time()
        late = self.config.late_s
        # oldest first: a dict keeps the order its keys came in (a file held again keeps
        # its place and its `since`), so the first SHOWN are the oldest, with no sort
        rows = [{"path": shown(self.rel(p)), "waiting_for": h.why, "since": h.since,
                 "age_s": round(now - h.since, 3), "late": now - h.since > late}
                for p, h in itertools.islice(self._held.items(), SHOWN)]  # fmt: skip
        rows += [{"path": shown(self.rel(m)), "waiting_for": "its file (a marker without one)",
                  "since": t, "age_s": round(now - t, 3), "late": now - t > late}
                 for m, t in itertools.islice(self._orphans.items(), SHOWN - len(rows))
                 ]  # fmt: skip
        return tuple(rows)

    def view(self) -> list[dict[str, Any]]:
        """What waits for a marker, oldest first, with ages as of now (any thread)."""
        now = time.time()
        return [{**r, "age_s": round(now - r["since"], 3),
                 "late": now - r["since"] > self.config.late_s} for r in self._view]  # fmt: skip

    def __len__(self) -> int:
        return len(self._held)
