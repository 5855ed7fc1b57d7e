"""Shared mode: holding a claim's name, so two instances never give two inputs one name.

A claim checks that its name is free everywhere the file will go (`moves.free_name`), then
renames. One instance does both in order, but two instances may check the same free name
at once, for two different inputs (`a.log` and a dropped `a~1.log`, say), and would both
write `results/a~1.log.json`. So in shared mode the name is held (and the claim checks
only its own folder before the rename, the rest after holding): right after its
rename the claim makes `.folderd/names/<hash of the name>` a hard link to the claimed file
— one `link()`, which exists whole or fails because the name is held, atomic on NFS too
(the server lets exactly one link win) — and only then looks again that nobody else has
the name (`moves.hold_name`); a claim that loses renames its file to the next `~N`, inside
its own underprocess/ folder, and tries again. Held first, looked at second: whoever held
the name before has its file where the look finds it (its move out of underprocess/ comes
before its release), so two inputs can never both pass.

A link makes no inode (making one costs ~0.8 ms of CPU on this project's VMs, as much as
the rest of a claim), and its owner is the inode itself: the same input claimed again
after a takeover — the same inode, renames keep it — finds the name its own. Where hard
links are refused (a file of another user under `fs.protected_hardlinks`, SMB without
Unix extensions) or do not show as links (sshfs: every name has a link count of 1 and an
inode number of its own) the reservation is a symlink whose target is the uid, the instance and
the name, or without symlinks a file made with O_EXCL. It is removed once the file has
left underprocess/: from then on the file in processed/ or failed/ and its summary keep
the name taken.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat

from daemon.states import Folders, State

NAMES_DIRNAME = "names"  # under .folderd/
_TEXT = re.compile(r"[0-9a-f]{32}\n[^\n]*\n.*", re.DOTALL)  # uid, instance, name
_RETRIES = 5  # a reservation made and removed that often under one claim: taken, then
_REFUSED = {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
            errno.EMLINK, errno.ENAMETOOLONG}  # fmt: skip


# names folder -> whether a hard link shows there as one (its link count above 1): not on
# sshfs, which reports every name as a file of its own
_LINKS_SHOWN: dict[str, bool] = {}
# names folders where names are held by text only: the uid must be readable by peers
# (inputs named by record, `daemon.identity`)
_TEXT_ONLY: set[str] = set()


def hold_by_text(folders: Folders) -> None:
    """From now on hold names in `folders` by text (uid, instance, name), never by link."""
    _TEXT_ONLY.add(os.path.join(folders.meta, NAMES_DIRNAME))


def path_of(folders: Folders, rel: str) -> str:
    """Where the reservation of the name `rel` is (held or not): `.folderd/names/<hash>`."""
    key = hashlib.sha256(rel.encode(errors="surrogateescape")).hexdigest()[:32]
    return os.path.join(folders.meta, NAMES_DIRNAME, key)


def _read(path: str) -> str | None:
    """A text reservation's uid, instance and name (three lines); None for a hard link
    (or none at all)."""
    try:
        return os.readlink(path)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a symlink
            return None
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_nlink > 1:  # a hard link to the claimed file
                return None
            text = f.read(8192).decode(errors="surrogateescape").removesuffix("\n")
    except OSError:
        return None
    # A hard link whose file was deleted elsewhere is a lone file too: its bytes are an
    # input's, not a reservation's.
    return text if _TEXT.fullmatch(text) else None


def _owned(path: str, uid: str, held: str) -> bool:
    """Whether the reservation at `path` is the input `uid`, now at `held`."""
    try:
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode) and st.st_nlink > 1:  # a hard link: to `held`?
            h = os.stat(held)
            return (st.st_ino, st.st_dev) == (h.st_ino, h.st_dev)
    except OSError:
        return False
    text = _read(path)
    return text is not None and text.partition("\n")[0] == uid


def reserve(folders: Folders, rel: str, uid: str, held: str) -> bool:
    """Whether `rel` is now reserved for the input `uid`, the file at `held` (made now, or
    already its own)."""
    path = path_of(folders, rel)
    top = os.path.dirname(path)
    links = _LINKS_SHOWN.get(top, True) and top not in _TEXT_ONLY
    for _ in range(_RETRIES if links else 0):
        try:
            os.link(held, path, follow_symlinks=False)
        except FileExistsError:  # another input's, or ours (NFS: a retransmitted link)
            if _owned(path, uid, held):
                return True
            if os.path.lexists(path):
                return False
            continue  # removed between our link and our look (see `_reserve_text`): again
        except FileNotFoundError:
            if not os.path.lexists(held):
                raise
            os.makedirs(top, exist_ok=True)
            continue
        except OSError as exc:
            if exc.errno not in _REFUSED:
                raise
            break
        if top not in _LINKS_SHOWN:  # the first link here: does it show as one?
            _LINKS_SHOWN[top] = os.lstat(held).st_nlink > 1
        if _LINKS_SHOWN[top]:
            return True
        os.unlink(path)  # sshfs: a link that looks like a file of its own (nlink 1, its
        break  # own inode number) could not be told from one: use the text form there
    return _reserve_text(path, f"{uid}\n{folders.instance}\n{rel}", uid, held)


def uid_of(folders: Folders, rel: str) -> str | None:
    """The uid a text reservation of `rel` names (None: a hard link, or none)."""
    text = _read(path_of(folders, rel))
    return text.partition("\n")[0] if text is not None else None


def adopt(folders: Folders, rel: str, uid: str) -> None:
    """A claim of `uid` taken over by this instance keeps its name: its text reservation
    is rewritten (one rename) to name this instance, so the dead one's restart does not
    drop it as its own. A hard link needs nothing: it is the file's."""
    path = path_of(folders, rel)
    text = _read(path)
    if text is None or text.partition("\n")[0] != uid:
        return
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.symlink(f"{uid}\n{folders.instance}\n{rel}", tmp)
        os.replace(tmp, path)
    except OSError:  # no symlinks here (the O_EXCL form): the old text still holds it
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _reserve_text(path: str, text: str, uid: str, held: str) -> bool:
    """Without a hard link: a symlink carrying `text`, or an exclusive create holding it.
    A reader may see the created file empty for an instant; an empty owner is nobody's,
    so that reader takes the next `~N`: a name given away, never one given twice."""
    made_dir = False
    for _ in range(_RETRIES):
        try:
            os.symlink(text, path)
            return True
        except FileExistsError:
            if _owned(path, uid, held):
                return True
            # Not ours, or gone between our create and our look: the instance a takeover
            # took this claim from lets its reservation go (`release_gone`) as it finds the
            # file gone. That is no other input's name: look again, or make it again (a
            # `~N` here would split one input in two).
            again = _read(path)
            if again is not None:
                return again.partition("\n")[0] == uid
            if os.path.lexists(path):
                return False  # another input's
        except FileNotFoundError:  # the names folder (made by the first link, if any)
            if made_dir or not os.path.lexists(held):
                raise
            os.makedirs(os.path.dirname(path), exist_ok=True)
            made_dir = True
        except OSError as exc:
            if exc.errno not in _REFUSED:
                raise
            break
    else:
        return False  # made and removed under us again and again: a name given away
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        return _owned(path, uid, held)
    try:
        os.write(fd, text.encode(errors="surrogateescape"))
    finally:
        os.close(fd)
    return True


def release(folders: Folders, rel: str, uid: str, held: str) -> None:
    """Drop the reservation of `rel` by the input `uid`, now at `held` (another input's is
    left alone)."""
    path = path_of(folders, rel)
    if _owned(path, uid, held):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def release_gone(folders: Folders, rel: str, uid: str) -> None:
    """The input `uid` was deleted from underprocess/ while it held `rel`: drop its
    reservation, a text one of its uid and this instance or a hard link now to nothing
    else (link count 1; a link to the file moved elsewhere still has its inode's other
    name, and is kept; so is a text one a peer took over with the file: `adopt`)."""
    path = path_of(folders, rel)
    text = _read(path)
    with contextlib.suppress(OSError):
        if text is None and os.lstat(path).st_nlink != 1:
            return
        if text is not None and text.split("\n", 2)[:2] != [uid, folders.instance]:
            return
        os.unlink(path)


def drop_stale(folders: Folders) -> int:
    """At start: reservations nothing needs any more; how many. A hard link whose file is
    gone everywhere else (its link count is 1); a text one of this instance's for a name
    it holds nothing under (it died between a reservation and its claim, or a move and the
    release). A hard link to a file that still exists blocks nothing the file itself does
    not: in processed/ or failed/ it keeps its name taken anyway."""
    top = os.path.join(folders.meta, NAMES_DIRNAME)
    claimed = folders.dirs[State.CLAIMED]
    dropped = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(top) as entries:
        for entry in entries:
            if entry.name.startswith("."):  # a rewrite (`adopt`) a crash cut short
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                continue
            text = _read(entry.path)
            if text is None:  # a hard link: stale once its file is gone everywhere else
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_nlink == 1:
                        os.unlink(entry.path)
                        dropped += 1
                continue
            _, instance, rel = [*text.split("\n", 2), "", ""][:3]
            if instance == folders.instance and not os.path.lexists(os.path.join(claimed, rel)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    dropped += 1
    return dropped
