"""Worker memory: the cap each worker runs under, and naming a death that memory caused.

The cap is `RLIMIT_DATA`, set by each worker on itself before it loads anything. Since
Linux 4.7 it bounds a process's private writable memory: the heap, anonymous maps (every
large `malloc`, Python's arenas, calamine's buffers) and thread stacks, but not the code
and read-only data of the libraries it maps, nor the address space glibc reserves per
thread for its malloc arenas (64 MiB each, `PROT_NONE` until used). `RLIMIT_AS` counts all
of that: a worker uploading to S3 (8 parts in flight) maps about 860 MB of address space
for 218 MB of data, 158 MB resident, so an address-space cap would have to be four times
what a file may really use. A cgroup would count resident memory exactly, but needs a
delegated cgroup tree (systemd's `Delegate=`, never in an unprivileged container) and
moving the daemon into a leaf of it; the rlimit works everywhere, for any user. The manual
has what each reader needs under it (Performance: worker guards).

A worker that reaches the cap gets a `MemoryError` in Python code; a library that aborts
when an allocation fails (Rust's calamine, C++'s `std::bad_alloc`) dies of SIGABRT after
saying so on stderr, which the pool reads (`allocation_failed`). Either way the attempt
ends with "exceeded the worker memory limit (N MB)" and counts as transient.

The kernel's OOM killer (a cgroup's limit, or the machine out of memory) kills with
SIGKILL, which alone looks like any `kill -9`: `OomCounters` reads the kernel's `oom_kill`
counters of the worker's cgroups (v2 and v1) before and after (the machine's only where no
cgroup counts: it moves for a kill anywhere), so the death is named for what it was. A
counter only says that some kill happened since a baseline: the kill a death is charged
with is taken out of the other workers' baselines (`OomCounters.charged`), so it is never
charged twice.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

MEMORY_SHARE = 0.75  # of the machine's (or the daemon's cgroup's) memory, for all workers
MIN_DEFAULT_MB = 512  # the default never goes below this, however many workers share
EXIT_RECYCLE = 75  # a worker's exit code after a MemoryError: replaced, its jobs re-queued
_UNLIMITED = 1 << 60  # cgroup v1 shows "no limit" as a huge number (PAGE_COUNTER_MAX)

# What a process says on stderr when an allocation fails, just before it aborts.
ALLOCATION_FAILED = (
    b"memory allocation of ",  # Rust's default alloc error handler
    b"std::bad_alloc",  # C++
    b"MemoryError",  # Python, when it cannot even report it in the worker
    b"Cannot allocate memory",  # ENOMEM as strerror
    b"out of memory",
)


def machine_memory_bytes() -> int:
    """Physical memory, or the daemon's cgroup memory limit when that is lower (a
    container started with `-m`, a unit with `MemoryMax=`)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limits = [limit for _, limit in _cgroup_files(os.getpid()) if limit is not None]
    return min([total, *limits])


def cap_mb(setting: int | None, workers: int) -> int | None:
    """The cap in MB for `--worker-memory-mb` (None: the default share; 0: no cap)."""
    if setting == 0:
        return None
    if setting is not None:
        return setting
    share = machine_memory_bytes() * MEMORY_SHARE / max(workers, 1)
    return max(MIN_DEFAULT_MB, int(share) >> 20)


def apply_cap(mb: int) -> None:
    """In the worker: cap its heap at `mb` MB (never raising a lower hard limit)."""
    limit = mb << 20
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def allocation_failed(stderr_tail: bytes) -> bool:
    """Whether a dead worker's last words say an allocation failed."""
    return any(marker in stderr_tail for marker in ALLOCATION_FAILED)


def _total_mb() -> int:
    return (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20


def limit_message(mb: int) -> str:
    return f"exceeded the worker memory limit ({mb} MB)"


TOO_SMALL = "worker_memory"  # the pause's cause when no worker can work under the cap
# What a worker that could not start says on stderr when the cap is what stopped it.
_START_FAILED = (*ALLOCATION_FAILED, b"can't start new thread")


def too_small(mb: int, what: str) -> str:
    return f"the worker memory limit ({mb} MB) is too small {what}"


def start_failure(mb: int | None, stderr_tail: bytes) -> str | None:
    """Why a worker died before it was ready, if the cap is the likely cause."""
    if mb and any(marker in stderr_tail for marker in _START_FAILED):
        return too_small(mb, "for a worker to start")
    return None


# -- the kernel's OOM killer -----------------------------------------------------------


def _cgroup_dirs(pid: int) -> list[tuple[Path, str]]:
    """The memory cgroups `pid` is in, innermost first, with their ancestors:
    (directory, "v1" or "v2")."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return []
    found: list[tuple[Path, str]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, kind = Path("/sys/fs/cgroup"), "v2"
            if not (base / "cgroup.controllers").exists():  # a hybrid: v2 at unified/
                base = base / "unified"
        elif "memory" in controllers.split(","):
            base, kind = Path("/sys/fs/cgroup/memory"), "v1"
        else:
            continue
        here = base / path.lstrip("/")
        while True:
            found.append((here, kind))
            if here == base:
                break
            here = here.parent
    return found


def _read_int(path: Path, key: str | None = None) -> int | None:
    """A file's number, or the number after `key` on one of its lines; None if absent."""
    try:
        text = path.read_text()
    except OSError:
        return None
    if key is None:
        value = text.strip()
        if value == "max":
            return None
        with contextlib.suppress(ValueError):
            number = int(value)
            return None if number >= _UNLIMITED else number
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return int(value)
    return None


def _cgroup_files(pid: int) -> list[tuple[int | None, int | None]]:
    """(oom_kill count, memory limit in bytes) of each memory cgroup of `pid`, innermost
    first; either is None where the kernel has none."""
    out = []
    for here, kind in _cgroup_dirs(pid):
        if kind == "v2":
            kills = _read_int(here / "memory.events.local", "oom_kill")
            if kills is None:
                kills = _read_int(here / "memory.events", "oom_kill")
            out.append((kills, _read_int(here / "memory.max")))
        else:
            out.append((_read_int(here / "memory.oom_control", "oom_kill"),
                        _read_int(here / "memory.limit_in_bytes")))  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class OomCounters:
    """The kernel's OOM kill counters a worker's death is compared against."""

    cgroups: tuple[tuple[int | None, int | None], ...]  # (oom_kill, limit), innermost first
    machine: int | None  # /proc/vmstat oom_kill: every OOM kill on the machine

    @classmethod
    def read(cls, pid: int) -> OomCounters:
        return cls(tuple(_cgroup_files(pid)), _read_int(Path("/proc/vmstat"), "oom_kill"))

    def killed_by_oom(self, after: OomCounters) -> str | None:
        """Why a worker that died of SIGKILL died, if the OOM killer is the likely cause:
        the counter of a cgroup it was in moved (the kernel counts a kill, of any kind, in
        the victim's own cgroup: that cgroup's limit is named, or the machine's memory if
        it has none). The machine's counter, which moves for a kill anywhere (another
        container, another user), is read only where no cgroup counts. None: not the OOM
        killer, as far as the kernel says."""
        pairs = zip(self.cgroups, after.cgroups, strict=False)
        counted = [(now > before, limit) for (before, limit), (now, _) in pairs
                   if before is not None and now is not None]  # fmt: skip
        if any(moved for moved, _ in counted):
            limit = next((lim for moved, lim in counted if moved and lim is not None), None)
            if limit is not None:
                return f"killed by the kernel's OOM killer (memory limit {limit >> 20} MB)"
            return f"killed by the kernel's OOM killer (the machine's {_total_mb()} MB)"
        if counted:
            return None
        if self.machine is not None and after.machine is not None and after.machine > self.machine:
            return f"killed by the kernel's OOM killer (the machine's {_total_mb()} MB)"
        return None

    def charged(self, before: OomCounters, after: OomCounters) -> OomCounters:
        """These counters (another live worker's baseline) with the kill a death was just
        charged with taken out: the counters moved from `before` to `after` across that
        death, and one kill is not two, so a worker started before it and later killed
        by hand is not named the OOM killer's too."""

        def less(mine: int | None, was: int | None, now: int | None) -> int | None:
            if mine is None or was is None or now is None or now <= was or mine >= now:
                return mine
            return mine + 1

        cgroups = tuple(
            (less(mine, was, now), limit)
            for (mine, limit), (was, _), (now, _) in zip(
                self.cgroups, before.cgroups, after.cgroups, strict=False
            )
        )
        return OomCounters(cgroups, less(self.machine, before.machine, after.machine))
