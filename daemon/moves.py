"""The only code that moves a file between the queue's folders: `transition()`.

It renames, journals and logs, in that order. Names never collide: a name already taken in
a target folder gets a visible `~N` suffix before its extension (`app.log` → `app~1.log`,
`x.log.gz` → `x~1.log.gz`), so nothing is ever overwritten. A claim also avoids names whose
result summary belongs to another input, so results of different inputs never overwrite
each other either. `admit()` is the one other way in: a complete upload renamed into
unprocessed/.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from daemon import identity
from daemon.errors import DaemonError
from daemon.journal import Journal
from daemon.shared import attempts, reservations
from daemon.states import TRANSITIONS, FileRef, Folders, State

if TYPE_CHECKING:
    from daemon.summary import Summary

log = structlog.get_logger(__name__)

_COMPRESSED = {".gz", ".bz2", ".xz", ".zst"}
NUMBER_ROOM = "~9999"  # what a name keeps free for the `~N` a taken name gets


def numbered(rel: str, n: int) -> str:
    """`sub/app.log` → `sub/app~n.log`; compound compressed extensions stay together."""
    head, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:  # no extension, or a name like ".bashrc"
        stem, ext = name, ""
    elif "." + ext in _COMPRESSED and "." in stem.lstrip("."):
        stem, _, inner = stem.rpartition(".")
        ext = f"{inner}.{ext}"
    new = f"{stem}~{n}" + (f".{ext}" if ext else "")
    return f"{head}/{new}" if head else new


def name_bytes(name: str) -> int:
    """The length of `name` on disk, in bytes (it may hold bytes that are not UTF-8)."""
    return len(os.fsencode(name))


def shorten(name: str, max_bytes: int, tag: str = "") -> str:
    """`name` cut to at most `max_bytes` bytes (never inside a character), its extension
    kept, `tag` (e.g. `~<uid>`) put before the extension."""
    if not tag and name_bytes(name) <= max_bytes:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or name_bytes(ext) > max_bytes // 2:
        stem, ext = name, ""
    tail = f".{ext}" if ext else ""
    room = max(max_bytes - name_bytes(tag) - name_bytes(tail), 1)
    kept, used = 0, 0
    for ch in stem:  # whole characters; a byte that is not UTF-8 is one
        used += name_bytes(ch)
        if used > room:
            break
        kept += 1
    return stem[: max(kept, 1)] + tag + tail


def first_free(rel: str, taken: Callable[[str], bool]) -> str:
    """The first of rel, rel~1, rel~2… that is not `taken`."""
    n = 0
    candidate = rel
    while taken(candidate):
        n += 1
        candidate = numbered(rel, n)
    return candidate


def _summary_owner(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return orjson.loads(f.read()).get("uid")
    except (OSError, ValueError, AttributeError):
        return None


def free_name(folders: Folders, to: State, rel: str, uid: str) -> str:
    """The first of rel, rel~1, rel~2… that is free in `to` (and, for a claim, everywhere
    the file will go next, with no summary of another input under that name). In shared
    mode a claim checks only its own underprocess/ folder here: the rest, every instance's
    folder included, is looked at once the name is held (`hold_name`)."""
    if to is State.CLAIMED and folders.instance:  # shared: only its own folder now, the
        own = folders.dirs[State.CLAIMED]  # rest once the name is held (`hold_name`)
        return first_free(rel, lambda candidate: os.path.lexists(os.path.join(own, candidate)))
    return first_free(rel, lambda candidate: _taken(folders, to, candidate, uid))


def _taken(folders: Folders, to: State, rel: str, uid: str, held: bool = False) -> bool:
    """Whether `rel` is taken for a move to `to` (`held`: the file is claimed under it
    already, so this instance's own folder does not count)."""
    if to is not State.CLAIMED:
        return os.path.lexists(os.path.join(folders.dirs[to], rel))
    claims = [d for d in _claim_dirs(folders)
              if not (held and os.path.basename(d) == folders.instance)]  # fmt: skip
    dirs = [*claims, folders.dirs[State.PROCESSED], folders.dirs[State.FAILED]]
    if any(os.path.lexists(os.path.join(d, rel)) for d in dirs):
        return True
    return summary_of_another(folders, rel, uid)


def summary_of_another(folders: Folders, rel: str, uid: str) -> bool:
    """Whether results/ holds a summary under the name `rel` that another input wrote."""
    summary = folders.summary_path(rel)
    return os.path.exists(summary) and _summary_owner(summary) != uid


def hold_name(folders: Folders, ref: FileRef, queued_rel: str) -> None:
    """Shared mode, right after `ref`'s claim rename: reserve its name
    (`daemon.shared.reservations`), then look again that no other input has it; if one
    does, rename the file to the next free `~N` of `queued_rel` inside this instance's
    folder and try that. Updates ref.rel."""
    top = folders.dirs[State.CLAIMED]
    lost: set[str] = set()  # names tried: each turn tries a new one (a held name may
    while True:  # have no file to show for it: a link a crash left, its file deleted)
        held = os.path.join(top, ref.rel)
        was = ref.rel
        try:
            if reservations.reserve(folders, ref.rel, ref.uid, held):
                if not _taken(folders, State.CLAIMED, ref.rel, ref.uid, held=True):
                    return
                reservations.release(folders, ref.rel, ref.uid, held)
            lost.add(ref.rel)
            ref.rel = first_free(queued_rel, lambda candidate: candidate in lost or _taken(
                folders, State.CLAIMED, candidate, ref.uid))  # fmt: skip
            _rename(held, os.path.join(top, ref.rel), ref.inode)
        except FileNotFoundError:
            raise  # the claimed file is gone: as if the claim was lost
        except OSError as exc:  # a broken filesystem: the file stays claimed where it is
            ref.rel = was
            log.error("name_not_held", path=was, error=str(exc),
                      action="claimed without its name reserved")  # fmt: skip
            return
        log.info("claim_renamed", path=ref.rel, from_path=was, why="another input holds the name")


def _claim_dirs(folders: Folders) -> list[str]:
    if not folders.instance:
        return [folders.dirs[State.CLAIMED]]
    with os.scandir(os.path.dirname(folders.dirs[State.CLAIMED])) as entries:
        return [e.path for e in entries if e.is_dir(follow_symlinks=False)]


def transition(
    folders: Folders,
    journal: Journal | None,
    ref: FileRef,
    to: State,
    *,
    reason: str | None = None,
    summary: Summary | None = None,
    source: Folders | None = None,
    **fields: Any,
) -> None:
    """Move `ref` to `to` by one rename, journal it and log it; updates ref.rel/ref.state.

    `summary` (the outcome of the attempt that ends here) is journaled with the move.
    `source`: the folders `ref` is in, if not `folders` (shared mode: a peer's claim taken
    over into this instance's underprocess/ folder keeps its name, held all along).

    Raises FileNotFoundError if the file is no longer where the daemon left it.
    """
    verb = TRANSITIONS.get((ref.state, to))
    if verb is None:
        raise ValueError(f"no transition {ref.state.value} -> {to.value}")
    came = source or folders
    src = ref.path(came)
    new_rel = free_name(folders, to, ref.rel, ref.uid)
    dst = os.path.join(folders.dirs[to], new_rel)
    if to is State.QUEUED and identity.by_record(folders):  # its uid, for the next claim
        identity.note_return(folders, new_rel, ref.uid, os.lstat(src))  # (gone: raises)
    _rename(src, dst, ref.inode)
    old_state, old_rel = ref.state, ref.rel
    if old_state is State.CLAIMED and folders.instance and to is not State.CLAIMED:
        reservations.release(folders, old_rel, ref.uid, dst)  # its new place keeps it now
        if to is not State.QUEUED:
            attempts.forget(folders, ref.uid)
    ref.state, ref.rel = to, new_rel
    if to is State.CLAIMED and folders.instance:
        hold_name(folders, ref, old_rel)
        if old_state is State.CLAIMED and ref.rel != old_rel:  # taken over under a new name
            reservations.release(folders, old_rel, ref.uid, ref.path(folders))
    if old_state in (State.FAILED, State.PROCESSED) and new_rel != old_rel:
        _carry_summary(folders, ref.uid, old_rel, new_rel)
    if "/" in old_rel and old_state is not State.QUEUED:
        _prune_empty_parents(os.path.dirname(src), came.dirs[old_state])
    if journal is not None:
        journal.transition(ref, old_state, old_rel, reason=reason, summary=summary)
    log.info(
        f"file_{verb}",
        path=ref.rel,
        **({"from_path": old_rel} if old_rel != ref.rel else {}),
        **{"from": old_state.value, "to": to.value},
        state=to.value,
        attempt=ref.attempt,
        **({"reason": reason} if reason else {}),
        **fields,
    )


def _carry_summary(folders: Folders, uid: str, old_rel: str, new_rel: str) -> None:
    """A finished file requeued (or reprocessed) under a new name takes its summary
    along, so the next attempt's commit replaces it (and the outputs it lists) rather than
    leaving a second summary of the same input under the old name (and that name taken
    for other inputs)."""
    src, dst = folders.summary_path(old_rel), folders.summary_path(new_rel)
    if _summary_owner(src) != uid or os.path.lexists(dst):
        return
    try:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
    except OSError as exc:  # the next commit still writes its own; only the old one stays
        log.warning("summary_not_moved", path=old_rel, to_path=new_rel, error=str(exc))


def admit(folders: Folders, staged: Path, name: str) -> str:
    """Rename a complete upload staged in `folders.uploads` into unprocessed/ under `name`
    (a `~N` suffix if it is taken); returns the name it got. The file has no journal row
    yet: like a file dropped by `cp`, it gets one when it is claimed."""
    if staged.parent != folders.uploads:
        raise ValueError(f"{staged} is not staged in {folders.uploads}")
    final = free_name(folders, State.QUEUED, name, uid="")
    _rename(str(staged), os.path.join(folders.dirs[State.QUEUED], final))
    log.info("file_admitted", path=final, state=State.QUEUED.value, via="upload")
    return final


def _rename(src: str, dst: str, ino: int = 0) -> None:
    """Rename `src` to `dst`, making `dst`'s folder if it is missing. FileNotFoundError
    only if `src` is gone. Whether the folder exists is not looked at: in shared mode a
    peer may make it between our failed rename and a look (two instances' first files of
    `n0/` reaching processed/ at once), and that must not pass for a vanished file."""
    for tries in range(3):  # a folder made, then pruned by a peer's requeue, then made
        try:
            os.rename(src, dst)
            return
        except FileNotFoundError:
            if ino and _landed(dst, ino):  # NFS: a retransmitted rename that had succeeded
                log.info("rename_confirmed", path=dst, why="ENOENT, but the target is the file")
                return
            if tries == 2 or not os.path.lexists(src):
                raise
            os.makedirs(os.path.dirname(dst), exist_ok=True)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise DaemonError(f"{src} and {dst} are on different filesystems") from None
            raise


def _landed(dst: str, ino: int) -> bool:
    try:
        return os.lstat(dst).st_ino == ino
    except OSError:
        return False


def _prune_empty_parents(d: str, top: str) -> None:
    # Sub-folders of unprocessed/ belong to whoever drops files (rsync -r may still be
    # writing into them), so callers never prune there; the other folders are folderd's.
    while d.startswith(top + os.sep):
        try:
            os.rmdir(d)
        except OSError:
            return
        d = os.path.dirname(d)
