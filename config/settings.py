"""Every setting folderd has, declared once: a typed field of `Settings` that carries its
flag, `FOLDERD_<NAME>` variable, cast, default and help.

A field declared with `setting(...)` (or `switch(...)` for a flag without a value) is a
command-line flag and an environment variable at once (for systemd's `EnvironmentFile=`);
`config.cli` makes the flags, `config.loading` reads argv and the environment into a
`Settings`, and `config.reference` writes the manual's table, all from `SETTINGS`. mypy
checks each declaration: the default and the cast's result must fit the field's type, and a
choice is a `Literal` whose words are both the type and what the cast accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from config import casts
from config.casts import Choice

Mode = Literal["watch", "input", "drain", "check_config", "test", "reprocess", "sync"]
LogFormat = Literal["auto", "json", "console"]
ZeroMtime = Literal["fail", "accept"]
EmptyFiles = Literal["fail", "process"]
MODES: tuple[Mode, ...] = get_args(Mode)
ENV_PREFIX = "FOLDERD_"  # every variable with it must be a setting (config.loading refuses others)

_T = TypeVar("_T")
_SPEC = "folderd.setting"  # the key of a setting's declaration in its field's metadata


@dataclass(frozen=True)
class Setting:
    """One setting, as `SETTINGS` lists it: its name is the flag without dashes, with `_`
    for `-`.

    `cast` turns the raw string into the typed value, or raises ValueError whose message
    is the expected form (`expected a whole number >= 1`).
    """

    name: str
    cast: Callable[[str], Any]
    default: Any
    help: str
    switch: bool = False  # a flag without a value (`--poll`); its variable takes a boolean
    secret: bool = False  # environment only (never on a command line, never logged)
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def choices(self) -> tuple[str, ...]:
        """The words a choice takes (its Literal's), or () for any other setting."""
        return self.cast.choices if isinstance(self.cast, Choice) else ()


def setting(
    cast: Callable[[str], _T],
    default: _T,
    help: str,
    *,
    secret: bool = False,
    metavar: str | None = None,
) -> _T:
    """A field of `Settings` that is a setting: a value flag and its variable. A secret one
    is environment only and kept out of the reprs (and so out of the logs)."""
    spec = {"cast": cast, "help": help, "secret": secret, "metavar": metavar}
    return field(default=default, repr=not secret, metadata={_SPEC: spec})


def switch(help: str) -> bool:
    """A field of `Settings` that is a switch: a flag without a value, off by default; its
    variable takes a boolean (`1/0`, `true/false`, `yes/no`, `on/off`)."""
    spec = {"cast": casts.boolean, "help": help, "switch": True}
    return field(default=False, metadata={_SPEC: spec})


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """`--sync TARGET [--glob G] [--wait]` or `--sync-cancel JOB`: asked of a running daemon."""

    target: str | None = None  # a source's name, or a folder (under its --source-roots)
    glob: str | None = None
    wait: bool = False  # follow the job's progress until it ends
    cancel: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What folderd was asked to do: the mode and what it needs, then the settings, in the
    order the reference lists them.

    Frozen: change a copy with `dataclasses.replace(settings, workers=2)`.
    """

    mode: Mode
    input: Path | None  # the file of `--input`, None in every other mode
    test_file: Path | None = None  # the FILE of `--test FILE` (None: the tests beside the config)
    reprocess: str | None = None  # the filter of `--reprocess FILTER` (asked of a running daemon)
    confirm: bool = False  # `--yes`: do it, not only count
    sync: SyncRequest | None = None  # `--sync` / `--sync-cancel`: a job asked of a running daemon

    config: Path = setting(
        Path, Path("pipeline_config.json"), "pipeline config file", metavar="FILE"
    )
    watch_dir: Path = setting(
        Path,
        Path("watch_dir"),
        "queue root: unprocessed/ underprocess/ processed/ failed/ live here",
        metavar="DIR",
    )
    results_dir: Path = setting(
        Path, Path("results"), "where result files and summaries are written", metavar="DIR"
    )
    host: str = setting(str, "127.0.0.1", "dashboard bind address", metavar="H")
    port: int = setting(casts.port, 8000, "dashboard port (0 picks a free one)", metavar="P")
    no_dashboard: bool = switch("do not serve the dashboard")
    workers: int = setting(
        casts.positive_int, _cpu_count(), "worker processes (default: CPU count)", metavar="N"
    )
    poll: bool = switch(
        "use the polling observer (NFS/SMB mounts, where inotify sees no remote writes)"
    )
    no_fsync: bool = switch(
        "skip fsync on results: faster, but a power cut may lose or tear recent results"
    )
    debug: bool = switch("log debug events")
    trace: bool = switch("record the path of sampled lines through the pipeline")
    log_format: LogFormat = setting(
        Choice.of(LogFormat),
        "auto",
        "log format; auto = console on a terminal, JSON lines otherwise",
    )
    settle: float = setting(
        casts.seconds,
        0.5,
        "seconds a file must stay unchanged before it is claimed (half that once its "
        "writer closed it; a file renamed in is claimed at once, see --settle-renames)",
        metavar="SECONDS",
    )
    settle_renames: bool = switch(
        "give files renamed into unprocessed/ the full settle window too (for a writer "
        "that renames a file it is still writing)"
    )
    rescan_interval: float = setting(
        casts.positive_float,
        30.0,
        "seconds between full rescans of unprocessed/ (catches events the watcher missed)",
        metavar="SECONDS",
    )
    poll_interval: float = setting(
        casts.positive_float,
        1.0,
        "seconds between scans of the polling observer (with --poll)",
        metavar="SECONDS",
    )
    max_attempts: int = setting(
        casts.positive_int, 3, "attempts for transient errors before a file fails", metavar="N"
    )
    retry_backoff: float = setting(
        casts.seconds,
        1.0,
        "first retry delay in seconds; doubles per attempt, with jitter",
        metavar="SECONDS",
    )
    shutdown_timeout: float = setting(
        casts.seconds,
        30.0,
        "seconds in-flight files may take to finish on SIGTERM before they are "
        "returned to unprocessed/",
        metavar="SECONDS",
    )
    stall_timeout: float = setting(
        casts.positive_float,
        120.0,
        "seconds a file's worker may go without progress (no bytes read or written, no "
        "lines through the pipeline, no rows or bytes delivered) before /health names "
        "it stalled",
        metavar="SECONDS",
    )
    stall_kill_after: float = setting(
        casts.seconds,
        600.0,
        "seconds without progress after which a stalled worker is killed (never before "
        "--stall-timeout): its file is retried (or held, not counted, if it was "
        "inside a sink); 0: never killed",
        metavar="SECONDS",
    )
    worker_memory_mb: int | None = setting(
        casts.non_negative_int,
        None,
        "the most heap (RLIMIT_DATA) one worker process may take; a file that needs "
        "more fails after its attempts; 0: no cap (default: 3/4 of the memory, divided "
        "by --workers)",
        metavar="MB",
    )
    ignore_patterns: tuple[str, ...] = setting(
        casts.patterns,
        ("*.part", "*.tmp", "*.crdownload", "*.swp", "~*"),
        "comma-separated name patterns never claimed (hidden files never are)",
        metavar="GLOBS",
    )
    zero_mtime: ZeroMtime = setting(
        Choice.of(ZeroMtime),
        "fail",
        "a file with mtime 0 is a suspected interrupted `rsync --partial`: fail it, or accept it",
    )
    empty_files: EmptyFiles = setting(
        Choice.of(EmptyFiles), "fail", "what to do with a 0-byte file"
    )
    skip_duplicates: bool = switch(
        "an input whose bytes (sha256) were already processed goes straight to "
        "processed/, its summary naming the first (duplicate_of); nothing is run or "
        "delivered again"
    )
    max_upload_mb: int = setting(
        casts.positive_int, 1024, "largest upload the dashboard accepts", metavar="MB"
    )
    min_disk_free_mb: int = setting(
        casts.non_negative_int,
        100,
        "claiming pauses (and /health fails) while watch_dir or results has less free "
        "space; 0: no floor",
        metavar="MB",
    )
    allowed_hosts: tuple[str, ...] = setting(
        casts.hosts,
        ("localhost", "127.0.0.1", "[::1]"),
        "comma-separated names the dashboard answers to in the Host header, besides "
        "its --host address; any other gets 400 (against DNS rebinding); * allows any",
        metavar="HOSTS",
    )
    trusted_proxies: tuple[str, ...] = setting(
        casts.networks,
        (),
        "comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto the dashboard believes; from any other "
        "peer those headers are ignored (default: none)",
        metavar="ADDRESSES",
    )
    allow_no_token: bool = switch(
        "serve the dashboard on a --host other than loopback without FOLDERD_TOKEN "
        "(refused otherwise): anyone who reaches it may upload, requeue, cancel and, "
        "through the Preview, run any plugin code"
    )
    max_connections: int = setting(
        casts.positive_int,
        256,
        "dashboard connections open at once; when full, a new one closes the longest "
        "idle (lowered to what the open-file limit leaves)",
        metavar="N",
    )
    http_timeout: float = setting(
        casts.positive_float,
        10.0,
        "seconds a dashboard connection may take to send a complete request head, "
        "after opening or after its previous response, before it is closed",
        metavar="SECONDS",
    )
    preview_timeout: float = setting(
        casts.positive_float,
        10.0,
        "seconds the dashboard's Preview may run one file before its worker process is killed",
        metavar="SECONDS",
    )
    preview_max_mb: int = setting(
        casts.positive_int,
        16,
        "largest file the dashboard's Preview runs (an upload or a file in processed/ or failed/)",
        metavar="MB",
    )
    shared: bool = switch(
        "one of several daemons on this watch_dir (a shared filesystem): see Scaling out"
    )
    instance: str | None = setting(
        casts.instance_name,
        None,
        "with --shared: this daemon's name, stable across restarts (default: the host name)",
        metavar="NAME",
    )
    state_dir: Path | None = setting(
        Path,
        None,
        "with --shared: a local folder for this instance's journal (never on NFS/SMB/FUSE)",
        metavar="DIR",
    )
    lease: float = setting(
        casts.positive_float,
        30.0,
        "with --shared: seconds a silent instance keeps its claims before peers take them over",
        metavar="SECONDS",
    )
    source_roots: tuple[Path, ...] = setting(
        casts.folders,
        (),
        "comma-separated folders under which a job (POST /api/sources, --sync) may "
        "walk any folder; without one, jobs only for the sources the config declares "
        "(default: none)",
        metavar="DIRS",
    )
    token: str | None = setting(
        str,
        None,
        "bearer token required for every request that changes something or runs code "
        "(upload, requeue, cancel, and the Preview, which runs plugin code)",
        secret=True,
    )


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, default=f.default, **f.metadata[_SPEC])
    for f in fields(Settings)
    if _SPEC in f.metadata
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
