"""The scanner: a thread that walks sources and tells the loop what differs from the journal.

A walk goes a folder at a time: it stats each file (one `lstat`, from `os.scandir`) and
compares the folder with its rows in the sources' journal (`store.Reader`, its own
read-only connection). A walk that compares metadata only (the common one: no hash, no
job) reads the folder's rows as a set of (name, size, mtime_ns, ctime_ns, inode) from an
index that covers them, makes the same of the folder's files, and takes the difference:
per file a stat and a tuple, nothing looked up; only what differs (new, changed,
deleted-and-back, gone) is looked at further. So an unchanged rescan costs a stat per file
and holds one folder's rows at a time: a million-file source is walked in constant memory
(a folder of more than `big_folder` rows is compared file by file, each looked up).
Deleted files are found by a sweep of the journal's rows, done only when the walk matched
fewer rows than the journal has. A hashed source reads every file's bytes on every walk
(its metadata cannot be trusted). What it finds goes to the loop in bounded batches
(`ScanBatch`): the scanner waits while the loop is behind.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import cast

import structlog

from config.sources import SourceConfig
from daemon.settle import Signature, signature
from daemon.sources.store import EntryState, Listed, Looked, Reader, path_key
from daemon.watcher import Ignored

log = structlog.get_logger(__name__)

BATCH = 500  # files per batch sent to the loop
QUEUED_BATCHES = 8  # batches waiting for the loop before the scanner waits too
BIG_FOLDER = 50_000  # a folder with more rows is compared file by file, not read at once


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """Walk `source` (or only its sub-folder `under`, or only `paths`) for `job`, if any."""

    source: SourceConfig
    root: str  # the source's folder, resolved
    job: int | None = None
    glob: str | None = None  # a job's: only files it matches (as `include` does)
    under: str = ""
    paths: tuple[str, ...] = ()

    @property
    def full(self) -> bool:
        return not self.under and not self.paths

    @property
    def key(self) -> tuple[str, int | None, str, tuple[str, ...]]:
        return (self.source.name, self.job, self.under, self.paths)


@dataclass(frozen=True, slots=True)
class Seen:
    """A file whose version differs from its row (or any file, for a job's walk)."""

    rel: str
    sig: Signature
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ScanDone:
    files: int
    bytes: int
    seconds: float
    full: bool
    error: str | None = None  # the source's folder could not be walked


@dataclass(slots=True)
class ScanBatch:
    source: str
    job: int | None
    seen: list[Seen] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    done: ScanDone | None = None


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def glob_matches(glob: str, rel: str) -> bool:
    return fnmatch.fnmatchcase(rel if "/" in glob else rel.rpartition("/")[2], glob)


class Scanner:
    """The thread, its requests (deduplicated) and its output queue."""

    def __init__(
        self,
        store_path: Path,
        ignored: Ignored,
        wake: Callable[[], None],
        big_folder: int = BIG_FOLDER,
    ) -> None:
        self._store_path = store_path
        self._big_folder = big_folder
        self._ignored = ignored
        self._wake = wake
        self._requests: queue.SimpleQueue[ScanRequest | None] = queue.SimpleQueue()
        self._wanted: set[tuple[str, int | None, str, tuple[str, ...]]] = set()
        self._lock = threading.Lock()
        self.out: queue.Queue[ScanBatch] = queue.Queue(QUEUED_BATCHES)
        self._stopped = threading.Event()
        self.cancelled: set[int] = set()  # jobs whose walk stops at its next file
        self._batch = ScanBatch("", None)  # the walk's, on the scanner's thread
        self._files = self._bytes = self._matched = 0
        self._compared: set[str] = set()
        self._archive: str | None = None  # the walk's source's archive, if inside it
        self._everything = True  # the walk's source and job have no globs
        self._thread = threading.Thread(target=self._run, name="folderd-sources", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, req: ScanRequest) -> None:
        """Walk as `req` says, unless the same walk is waiting already."""
        with self._lock:
            if req.key in self._wanted:
                return
            self._wanted.add(req.key)
        self._requests.put(req)

    def scanning(self, source: str) -> bool:
        with self._lock:
            return any(k[0] == source for k in self._wanted)

    def stop(self) -> None:
        self._stopped.set()
        self._requests.put(None)
        with contextlib.suppress(queue.Empty):  # unblock a put waiting for room
            while True:
                self.out.get_nowait()
        self._thread.join(10)

    def _run(self) -> None:
        reader = Reader(self._store_path)
        try:
            while (req := self._requests.get()) is not None:
                with self._lock:
                    self._wanted.discard(req.key)
                try:
                    self._scan(reader, req)
                except Exception as exc:  # a bug must not end the thread: the next rescan runs
                    log.error("source_scan_failed", source=req.source.name, error=repr(exc))
        finally:
            reader.close()

    def _send(self, batch: ScanBatch) -> bool:
        while not self._stopped.is_set():
            try:
                self.out.put(batch, timeout=0.5)
            except queue.Full:
                continue
            self._wake()
            return True
        return False

    def _scan(self, reader: Reader, req: ScanRequest) -> None:
        started = time.monotonic()
        src = req.source
        self._batch = ScanBatch(src.name, req.job)
        self._files = self._bytes = self._matched = 0
        self._compared = set()  # folders whose rows were read at once: their deleted
        error = None  # files are reported already, the sweep passes them by
        self._archive = inside(src.archive, req.root)
        # every file wanted: no globs to match
        self._everything = src.include == ("*",) and not src.exclude and req.glob is None
        try:
            if req.paths:
                for rel, st in self._listed(req):
                    self._compare(req, rel, st, reader.lookup(src.name, rel))
            else:
                self._walk(reader, req)
            if req.full and self._matched < reader.live_count(src.name):
                for rel in self._swept(reader, req):
                    self._batch.missing.append(rel)
                    self._flush_if_full(req)
        except _RootGone as exc:
            error = str(exc)
        except _Stopped:
            return
        seconds = time.monotonic() - started
        batch = self._batch
        batch.done = ScanDone(self._files, self._bytes, seconds, req.full, error)
        self._send(batch)
        log.info("source_scanned", source=src.name, files=self._files, bytes=self._bytes,
                 job=req.job, seconds=round(seconds, 3), error=error)  # fmt: skip

    def _flush_if_full(self, req: ScanRequest) -> None:
        b = self._batch
        if len(b.seen) + len(b.missing) >= BATCH:
            if not self._send(b):
                raise _Stopped
            self._batch = ScanBatch(req.source.name, req.job)
        if self._stopped.is_set() or (req.job is not None and req.job in self.cancelled):
            raise _Stopped

    def _compare(
        self, req: ScanRequest, rel: str, st: os.stat_result | None, row: Looked | None
    ) -> None:
        """Report `rel` if its version differs from its row (a job's walk: every file)."""
        src = req.source
        if row is not None and row[0] != EntryState.DELETED:
            self._matched += 1
        if st is None:
            if row is not None and row[0] != EntryState.DELETED:
                self._batch.missing.append(rel)
            self._flush_if_full(req)
            return
        self._files += 1
        self._bytes += st.st_size
        sig = signature(st)
        sha = None
        if src.hash:
            try:
                sha = sha256_file(os.path.join(req.root, rel))
            except OSError:
                return  # gone or unreadable now: the next walk sees it
        if (
            req.job is not None
            or row is None
            or row[0] == EntryState.DELETED
            or (row[1] != sig or (src.hash and row[2] != sha))
        ):
            self._batch.seen.append(Seen(rel, sig, sha))
        self._flush_if_full(req)

    def _wanted_file(self, req: ScanRequest, rel: str) -> bool:
        """Whether the walk looks at the file `rel`, not ignored (its folders were looked
        at already): the source's globs and the job's."""
        if not req.source.wants(rel):
            return False
        return req.glob is None or glob_matches(req.glob, rel)

    def _walk(self, reader: Reader, req: ScanRequest) -> None:
        """Walk depth first, a folder at a time, comparing what it holds with its rows: a
        file that differs is seen, a row whose file is gone is missing. A folder of more
        than `big_folder` rows is compared file by file (each looked up)."""
        src = req.source
        # a walk that only compares metadata (no hash to compare, no job counting every
        # file) reads a folder's rows as a set of signatures and takes the difference
        sets = not src.hash and req.job is None
        stack = [req.under]
        while stack:
            d = stack.pop()
            path = os.path.join(req.root, d) if d else req.root
            rows = reader.folder_sigs(src.name, path_key(d), self._big_folder) if sets else None
            try:
                it = os.scandir(os.fsencode(path) if rows is not None else path)
            except FileNotFoundError:
                if not d:
                    raise _RootGone(f"{req.root} is missing") from None
                continue  # a sub-folder removed while walking
            except OSError as exc:
                if not d:
                    raise _RootGone(f"{req.root}: {exc.strerror or exc}") from None
                log.warning("source_folder_unreadable", source=src.name, path=d,
                            error=exc.strerror or str(exc))  # fmt: skip
                continue
            if rows is not None:
                depth = len(stack)
                with it:
                    quick = self._folder_quick(req, d, cast("Iterator[os.DirEntry[bytes]]", it),
                                               rows, stack)  # fmt: skip
                if quick:
                    self._compared.add(d)
                    self._flush_if_full(req)
                    continue
                del stack[depth:]  # more files than `big_folder`: compared file by file
                try:
                    it = os.scandir(path)
                except OSError:
                    continue  # gone meanwhile: the sweep looks at its rows
            with it:
                self._folder_each(reader, req, d, cast("Iterator[os.DirEntry[str]]", it), stack)
            self._flush_if_full(req)

    def _subfolder(self, req: ScanRequest, rel: str, name: str, stack: list[str]) -> None:
        if req.source.recursive and rel != self._archive and not name.startswith("."):
            stack.append(rel)

    def _folder_quick(
        self,
        req: ScanRequest,
        d: str,
        it: Iterator[os.DirEntry[bytes]],
        rows: set[Listed],
        stack: list[str],
    ) -> bool:
        """Compare the folder `d` with its rows as sets of (name, signature): per file only
        its stat and a tuple; what differs (new, changed, back after deletion, ignored) and
        what is gone are looked at afterwards, the few of them. False, nothing reported,
        if it holds more than `big_folder` files (its set would be as large)."""
        prefix = f"{d}/" if d else ""
        here: set[Listed] = set()
        add = here.add
        size = 0
        most = self._big_folder
        for entry in it:
            try:
                if entry.is_file(follow_symlinks=False):
                    if not self._everything and not self._wanted_file(
                        req, prefix + os.fsdecode(entry.name)
                    ):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    add((entry.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
                    size += st.st_size
                    if len(here) > most:
                        return False
                elif entry.is_dir(follow_symlinks=False):
                    sub = os.fsdecode(entry.name)
                    self._subfolder(req, prefix + sub, sub, stack)
            except FileNotFoundError:
                continue  # removed meanwhile
        differ = here - rows
        unchanged = len(here) - len(differ)
        self._files += unchanged
        self._matched += unchanged
        self._bytes += size
        if not differ and len(rows) == unchanged:
            return True
        changed = {r[0] for r in rows - here}  # rows whose file differs, or is gone
        for name, *sig in sorted(differ):
            rel = prefix + os.fsdecode(name)
            if self._ignored(rel.rpartition("/")[2]):
                self._bytes -= sig[0]
                continue
            self._files += 1
            if name in changed:
                self._matched += 1
                changed.discard(name)
            self._batch.seen.append(Seen(rel, (sig[0], sig[1], sig[2], sig[3])))
            self._flush_if_full(req)
        for name in sorted(changed):  # no file of this name here (or not one to walk)
            self._batch.missing.append(prefix + os.fsdecode(name))
            self._flush_if_full(req)
        return True

    def _folder_each(
        self,
        reader: Reader,
        req: ScanRequest,
        d: str,
        it: Iterator[os.DirEntry[str]],
        stack: list[str],
    ) -> None:
        """Compare the folder `d` file by file: its rows read at once, or, past
        `big_folder`, each file's looked up."""
        src = req.source
        rows = reader.folder(src.name, d, self._big_folder)
        if rows is not None:
            self._compared.add(d)
        prefix = f"{d}/" if d else ""
        for entry in it:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    self._subfolder(req, prefix + name, name, stack)
                    continue
                if self._ignored(name) or not (
                    self._everything or self._wanted_file(req, prefix + name)
                ):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not S_ISREG(st.st_mode):
                continue
            row = rows.pop(name, None) if rows is not None else reader.lookup(
                src.name, prefix + name)  # fmt: skip
            self._compare(req, prefix + name, st, row)
        for name, row in (rows or {}).items():  # rows whose file this folder no longer has
            self._compare(req, prefix + name, None, row)

    def _listed(self, req: ScanRequest) -> Iterator[tuple[str, os.stat_result | None]]:
        archive = inside(req.source.archive, req.root)
        for rel in req.paths:
            if archived(archive, rel) or self._ignored(rel):
                continue
            if not self._wanted_file(req, rel):
                continue
            try:
                st = os.lstat(os.path.join(req.root, rel))
            except (FileNotFoundError, NotADirectoryError):
                yield rel, None
                continue
            if S_ISREG(st.st_mode):
                yield rel, st

    def _swept(self, reader: Reader, req: ScanRequest) -> Iterator[str]:
        """Rows whose file is gone, unless the source's folder itself is (then nothing is
        deleted: an unmounted folder is the machine's, not its files'); the rows of folders
        whose rows were read at once were compared already (a folder past `big_folder`,
        or one no longer there, is swept)."""
        for rel in reader.live_paths(req.source.name):
            if rel.rpartition("/")[0] in self._compared:
                continue
            try:
                os.lstat(os.path.join(req.root, rel))
            except (FileNotFoundError, NotADirectoryError):
                if not os.path.isdir(req.root):
                    raise _RootGone(f"{req.root} is missing") from None
                yield rel


class _Stopped(Exception):
    """The daemon is stopping, or the walk's job was cancelled."""


class _RootGone(Exception):
    """The source's folder cannot be walked (missing, unreadable)."""


def inside(archive: Path | None, root: str) -> str | None:
    """The archive folder relative to the source's folder when it lies inside it (never
    walked nor watched: what is archived there was processed), else None."""
    if archive is None:
        return None
    a = os.path.realpath(archive)
    return a[len(root) + 1 :] if a.startswith(root + os.sep) else None


def archived(archive: str | None, rel: str) -> bool:
    """Whether `rel` lies in the archive folder `archive` (relative, from `inside`)."""
    return archive is not None and (rel == archive or rel.startswith(archive + "/"))
