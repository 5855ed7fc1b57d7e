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
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
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
        rel = self.rel(path)
        if self._returning(rel):
            return None
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
            self._held.pop(path, None)
            return False
        before = self._held.get(path)
        self._held[path] = _Held(sig, priority, before.since if before else time.time(), shown(why))
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
        released = self.release(os.path.dirname(path) + os.sep)
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
        for sub in walk_files(top) if os.path.isdir(top) else ():
            rel = f"{folder}/{sub}"
            if not self.is_marker(rel) and self._ignored(rel) is None:
                found.append(rel)
        return found

    def release(self, under: str = "") -> list[Released]:
        """The held files (those under `under`, if given) that may go on now."""
        out = []
        for path, held in list(self._held.items()):
            if path.startswith(under) and self.waits_for(path) is None:
                del self._held[path]
                out.append((path, held.sig, held.priority))
                log.info("file_marker_found", path=self.rel(path),
                         waited_s=round(time.time() - held.since, 3))  # fmt: skip
        if out:
            self._dirty = True
        return out

    def forget(self, path: str) -> None:
        """`path` left unprocessed/ (deleted, cancelled, moved away)."""
        if self._held.pop(path, None) is not None or self._orphans.pop(path, None):
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
        released = self.release()
        for marker in [m for m in self._orphans if not os.path.lexists(m)]:
            del self._orphans[marker]
            self._dirty = True
        if self._dirty:
            self._dirty = False
            self._view = self._listing()
        return released

    def _listing(self) -> tuple[dict[str, Any], ...]:
        now = time.time()
        late = self.config.late_s
        rows = [{"path": shown(self.rel(p)), "waiting_for": h.why, "since": h.since,
                 "age_s": round(now - h.since, 3), "late": now - h.since > late}
                for p, h in sorted(self._held.items(), key=lambda kv: kv[1].since)]  # fmt: skip
        rows += [{"path": shown(self.rel(m)), "waiting_for": "its file (a marker without one)",
                  "since": t, "age_s": round(now - t, 3), "late": now - t > late}
                 for m, t in sorted(self._orphans.items(), key=lambda kv: kv[1])]  # fmt: skip
        return tuple(rows[:SHOWN])

    def view(self) -> list[dict[str, Any]]:
        """What waits for a marker, oldest first, with ages as of now (any thread)."""
        now = time.time()
        return [{**r, "age_s": round(now - r["since"], 3),
                 "late": now - r["since"] > self.config.late_s} for r in self._view]  # fmt: skip

    def __len__(self) -> int:
        return len(self._held)
