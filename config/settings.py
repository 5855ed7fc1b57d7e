"""Every setting folderd has, declared once, and the one function that loads them.

Each `Setting` is a command-line flag and a `FOLDERD_<NAME>` environment variable at once
(for systemd's `EnvironmentFile=`); a flag given on the command line wins over the
variable, which wins over the default. Values are parsed and checked here, and a
`FOLDERD_*` variable that is no setting is refused with the nearest real name as a hint,
so the rest of the code receives typed, valid `Settings` or never starts.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from config.errors import ConfigError

MODES = ("watch", "input", "drain", "check_config", "test", "reprocess", "sync")
ENV_PREFIX = "FOLDERD_"  # every variable with it must be a setting (see _refuse_unknown)

_N = TypeVar("_N", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected a boolean (1/0, true/false, yes/no, on/off)")


def _number(cast: Callable[[str], _N], raw: str, ok: Callable[[_N], bool], expected: str) -> _N:
    """`cast(raw)` if it parses and passes `ok`, else ValueError(expected): a user who wrote
    `x` needs the same answer as one who wrote an out-of-range number."""
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(expected) from None
    if not ok(value):  # NaN fails every comparison, so it is refused here too
        raise ValueError(expected)
    return value


def _positive_int(raw: str) -> int:
    return _number(int, raw, lambda v: v >= 1, "expected a whole number >= 1")


def _non_negative_int(raw: str) -> int:
    return _number(int, raw, lambda v: v >= 0, "expected a whole number >= 0")


def _port(raw: str) -> int:
    return _number(int, raw, lambda v: 0 <= v <= 65535, "expected a port number from 0 to 65535")


def _non_negative_float(raw: str) -> float:
    return _number(float, raw, lambda v: v >= 0, "expected a number of seconds >= 0")


def _positive_float(raw: str) -> float:
    return _number(float, raw, lambda v: v > 0, "expected a number > 0")


def instance_name(raw: str) -> str:
    """A name usable as one folder name on every filesystem a watch_dir may live on."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", raw):
        raise ValueError(
            "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return raw


def _patterns(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _folders(raw: str) -> tuple[Path, ...]:
    paths = tuple(Path(p) for p in _patterns(raw))
    if any(not p.is_absolute() for p in paths):
        raise ValueError("expected absolute folder paths, comma-separated")
    return paths


def host_name(raw: str) -> str:
    """A host name as the dashboard compares them: lowercase, without a trailing dot, an IPv6
    address in brackets in its shortest form (`[::1]`); ValueError for anything with a
    scheme, a path or a port, which a name in a `Host` header is compared without."""
    name = raw.strip().lower().removesuffix(".")
    try:
        return f"[{ipaddress.IPv6Address(name.removeprefix('[').removesuffix(']')).compressed}]"
    except ValueError:
        pass
    if not name or any(c in name for c in ":/[]@ \t"):
        raise ValueError("expected host names without scheme or port (* for any)")
    return name


def _hosts(raw: str) -> tuple[str, ...]:
    names = _patterns(raw)
    if not names:
        raise ValueError("expected at least one host name (* for any)")
    return tuple(n if n == "*" else host_name(n) for n in names)


def _networks(raw: str) -> tuple[str, ...]:
    """IP addresses or networks (CIDR), each in its normal form (`10.0.0.0/8`, `::1/128`)."""
    found = []
    for item in _patterns(raw):
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks like 127.0.0.1 or 10.0.0.0/8, not {item!r}"
            ) from None
    return tuple(found)


def is_loopback(host: str) -> bool:
    """Whether a `--host` binds only this machine's loopback: a loopback address, or the
    name localhost. Any other name counts as reachable from elsewhere (it is not resolved
    here: what it resolves to may change)."""
    name = host.strip().lower().removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return raw

    parse.choices = choices  # type: ignore[attr-defined]
    return parse


@dataclass(frozen=True)
class Setting:
    """One setting: its name is the flag without dashes, with `_` for `-`.

    `parse` turns the raw string into the typed value, or raises ValueError whose message
    is the expected form (`expected a whole number >= 1`).
    """

    name: str
    parse: Callable[[str], Any]
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


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


SETTINGS: tuple[Setting, ...] = (
    Setting("config", Path, Path("pipeline_config.json"), "pipeline config file", metavar="FILE"),
    Setting(
        "watch_dir",
        Path,
        Path("watch_dir"),
        "queue root: unprocessed/ underprocess/ processed/ failed/ live here",
        metavar="DIR",
    ),
    Setting(
        "results_dir",
        Path,
        Path("results"),
        "where result files and summaries are written",
        metavar="DIR",
    ),
    Setting("host", str, "127.0.0.1", "dashboard bind address", metavar="H"),
    Setting("port", _port, 8000, "dashboard port (0 picks a free one)", metavar="P"),
    Setting("no_dashboard", _bool, False, "do not serve the dashboard", switch=True),
    Setting(
        "workers", _positive_int, _cpu_count(), "worker processes (default: CPU count)", metavar="N"
    ),
    Setting(
        "poll",
        _bool,
        False,
        "use the polling observer (NFS/SMB mounts, where inotify sees no remote writes)",
        switch=True,
    ),
    Setting(
        "no_fsync",
        _bool,
        False,
        "skip fsync on results: faster, but a power cut may lose or tear recent results",
        switch=True,
    ),
    Setting("debug", _bool, False, "log debug events", switch=True),
    Setting(
        "trace", _bool, False, "record the path of sampled lines through the pipeline", switch=True
    ),
    Setting(
        "log_format",
        _choice("auto", "json", "console"),
        "auto",
        "log format; auto = console on a terminal, JSON lines otherwise",
    ),
    Setting(
        "settle",
        _non_negative_float,
        0.5,
        "seconds a file must stay unchanged before it is claimed (half that once its "
        "writer closed it; a file renamed in is claimed at once, see --settle-renames)",
        metavar="SECONDS",
    ),
    Setting(
        "settle_renames",
        _bool,
        False,
        "give files renamed into unprocessed/ the full settle window too (for a writer that "
        "renames a file it is still writing)",
        switch=True,
    ),
    Setting(
        "rescan_interval",
        _positive_float,
        30.0,
        "seconds between full rescans of unprocessed/ (catches events the watcher missed)",
        metavar="SECONDS",
    ),
    Setting(
        "poll_interval",
        _positive_float,
        1.0,
        "seconds between scans of the polling observer (with --poll)",
        metavar="SECONDS",
    ),
    Setting(
        "max_attempts",
        _positive_int,
        3,
        "attempts for transient errors before a file fails",
        metavar="N",
    ),
    Setting(
        "retry_backoff",
        _non_negative_float,
        1.0,
        "first retry delay in seconds; doubles per attempt, with jitter",
        metavar="SECONDS",
    ),
    Setting(
        "shutdown_timeout",
        _non_negative_float,
        30.0,
        "seconds in-flight files may take "
        "to finish on SIGTERM before they are returned to unprocessed/",
        metavar="SECONDS",
    ),
    Setting(
        "stall_timeout",
        _positive_float,
        120.0,
        "seconds a file's worker may go without progress (no bytes read or written, no lines "
        "through the pipeline, no rows or bytes delivered) before /health names it stalled",
        metavar="SECONDS",
    ),
    Setting(
        "stall_kill_after",
        _non_negative_float,
        600.0,
        "seconds without progress after which a stalled worker is killed (never before "
        "--stall-timeout): its file is retried (or held, not counted, if it was inside a "
        "sink); 0: never killed",
        metavar="SECONDS",
    ),
    Setting(
        "worker_memory_mb",
        _non_negative_int,
        None,
        "the most heap (RLIMIT_DATA) one worker process may take; a file that needs more "
        "fails after its attempts; 0: no cap (default: 3/4 of the memory, divided by --workers)",
        metavar="MB",
    ),
    Setting(
        "ignore_patterns",
        _patterns,
        ("*.part", "*.tmp", "*.crdownload", "*.swp", "~*"),
        "comma-separated name patterns never claimed (hidden files never are)",
        metavar="GLOBS",
    ),
    Setting(
        "zero_mtime",
        _choice("fail", "accept"),
        "fail",
        "a file with mtime 0 is a suspected interrupted `rsync --partial`: fail it, or accept it",
    ),
    Setting("empty_files", _choice("fail", "process"), "fail", "what to do with a 0-byte file"),
    Setting(
        "skip_duplicates",
        _bool,
        False,
        "an input whose bytes (sha256) were already processed goes straight to processed/, "
        "its summary naming the first (duplicate_of); nothing is run or delivered again",
        switch=True,
    ),
    Setting(
        "max_upload_mb", _positive_int, 1024, "largest upload the dashboard accepts", metavar="MB"
    ),
    Setting(
        "min_disk_free_mb",
        _non_negative_int,
        100,
        "claiming pauses (and /health fails) while watch_dir or results has less free space; "
        "0: no floor",
        metavar="MB",
    ),
    Setting(
        "allowed_hosts",
        _hosts,
        ("localhost", "127.0.0.1", "[::1]"),
        "comma-separated names the dashboard answers to in the Host header, besides its "
        "--host address; any other gets 400 (against DNS rebinding); * allows any",
        metavar="HOSTS",
    ),
    Setting(
        "trusted_proxies",
        _networks,
        (),
        "comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto the dashboard believes; from any other peer "
        "those headers are ignored (default: none)",
        metavar="ADDRESSES",
    ),
    Setting(
        "allow_no_token",
        _bool,
        False,
        "serve the dashboard on a --host other than loopback without FOLDERD_TOKEN (refused "
        "otherwise): anyone who reaches it may upload, requeue, cancel and, through the "
        "Preview, run any plugin code",
        switch=True,
    ),
    Setting(
        "max_connections",
        _positive_int,
        256,
        "dashboard connections open at once; when full, a new one closes the longest idle "
        "(lowered to what the open-file limit leaves)",
        metavar="N",
    ),
    Setting(
        "http_timeout",
        _positive_float,
        10.0,
        "seconds a dashboard connection may take to send a complete request head, after "
        "opening or after its previous response, before it is closed",
        metavar="SECONDS",
    ),
    Setting(
        "preview_timeout",
        _positive_float,
        10.0,
        "seconds the dashboard's Preview may run one file before its worker process is killed",
        metavar="SECONDS",
    ),
    Setting(
        "preview_max_mb",
        _positive_int,
        16,
        "largest file the dashboard's Preview runs (an upload or a file in processed/ or failed/)",
        metavar="MB",
    ),
    Setting(
        "shared",
        _bool,
        False,
        "one of several daemons on this watch_dir (a shared filesystem): see Scaling out",
        switch=True,
    ),
    Setting(
        "instance",
        instance_name,
        None,
        "with --shared: this daemon's name, stable across restarts (default: the host name)",
        metavar="NAME",
    ),
    Setting(
        "state_dir",
        Path,
        None,
        "with --shared: a local folder for this instance's journal (never on NFS/SMB/FUSE)",
        metavar="DIR",
    ),
    Setting(
        "lease",
        _positive_float,
        30.0,
        "with --shared: seconds a silent instance keeps its claims before peers take them over",
        metavar="SECONDS",
    ),
    Setting(
        "source_roots",
        _folders,
        (),
        "comma-separated folders under which a job (POST /api/sources, --sync) may walk any "
        "folder; without one, jobs only for the sources the config declares (default: none)",
        metavar="DIRS",
    ),
    Setting(
        "token",
        str,
        None,
        "bearer token required for every request that changes something or runs code "
        "(upload, requeue, cancel, and the Preview, which runs plugin code)",
        secret=True,
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """`--sync TARGET [--glob G] [--wait]` or `--sync-cancel JOB`: asked of a running daemon."""

    target: str | None = None  # a source's name, or a folder (under its --source-roots)
    glob: str | None = None
    wait: bool = False  # follow the job's progress until it ends
    cancel: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What folderd was asked to do: the mode, then one typed field per entry of `SETTINGS`.

    The table gives each field its flag, variable, parser, default and help; this class
    gives it its type. `_check_fields` below refuses to import the module if the two drift.
    Frozen: change a copy with `dataclasses.replace(settings, workers=2)`.
    """

    mode: str  # one of MODES
    input: Path | None  # the file of `--input`, None in every other mode
    test_file: Path | None = None  # the FILE of `--test FILE` (None: the tests beside the config)
    reprocess: str | None = None  # the filter of `--reprocess FILTER` (asked of a running daemon)
    confirm: bool = False  # `--yes`: do it, not only count
    sync: SyncRequest | None = None  # `--sync` / `--sync-cancel`: a job asked of a running daemon
    config: Path
    watch_dir: Path
    results_dir: Path
    host: str
    port: int
    no_dashboard: bool
    workers: int
    poll: bool
    no_fsync: bool
    debug: bool
    trace: bool
    log_format: str
    settle: float
    settle_renames: bool
    rescan_interval: float
    poll_interval: float
    max_attempts: int
    retry_backoff: float
    shutdown_timeout: float
    stall_timeout: float
    stall_kill_after: float
    worker_memory_mb: int | None
    ignore_patterns: tuple[str, ...]
    zero_mtime: str
    empty_files: str
    skip_duplicates: bool
    max_upload_mb: int
    min_disk_free_mb: int
    allowed_hosts: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    allow_no_token: bool
    max_connections: int
    http_timeout: float
    preview_timeout: float
    preview_max_mb: int
    shared: bool
    instance: str | None
    state_dir: Path | None
    lease: float
    source_roots: tuple[Path, ...]
    token: str | None = field(repr=False)  # a secret: kept out of reprs and so out of logs


_MODE_FIELDS = ("mode", "input", "test_file", "reprocess", "confirm", "sync")


def _holds(hint: Any, value: object) -> bool:
    """Whether `value` fits the annotation `hint` (only the forms Settings uses)."""
    if isinstance(hint, types.UnionType):
        return any(_holds(arg, value) for arg in get_args(hint))
    if get_origin(hint) is tuple:  # tuple[X, ...]
        item = get_args(hint)[0]
        return isinstance(value, tuple) and all(_holds(item, v) for v in value)
    if isinstance(value, bool) and hint is not bool:
        return False  # a bool is an int to isinstance, but a switch is not a number
    return isinstance(value, hint)


def _check_fields(cls: type, table: Sequence[Setting]) -> None:
    """Raise TypeError unless `cls` has the mode fields, then exactly one field per setting
    of `table` in its order, typed to hold that setting's default, out of repr if secret."""
    declared = {f.name: f for f in fields(cls)}
    names = [name for name in declared if name not in _MODE_FIELDS]
    wanted = [s.name for s in table]
    if names != wanted:
        missing, extra = sorted(set(wanted) - set(names)), sorted(set(names) - set(wanted))
        raise TypeError(
            f"{cls.__name__} does not match SETTINGS: fields missing {missing}, "
            f"fields not in the table {extra}" + ("" if missing or extra else ", order differs")
        )
    hints = get_type_hints(cls)
    for s in table:
        if not _holds(hints[s.name], s.default):
            raise TypeError(
                f"{cls.__name__}.{s.name} is {hints[s.name]}, "
                f"which cannot hold its default {s.default!r}"
            )
        if declared[s.name].repr == s.secret:
            raise TypeError(
                f"{cls.__name__}.{s.name}: a secret setting needs field(repr=False), "
                "and only a secret one"
            )


_check_fields(Settings, SETTINGS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="folderd: process files dropped into watch_dir/unprocessed/, exactly once.",
        epilog="Every flag also reads from a FOLDERD_* environment variable "
        "(--watch-dir: FOLDERD_WATCH_DIR). FOLDERD_TOKEN sets the dashboard's bearer token. "
        "Any other FOLDERD_* variable is refused. The default paths are in the folder of "
        "main.py, whatever the working directory; a relative path you give is taken from the "
        "working directory.",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--watch",
        action="store_const",
        const="watch",
        dest="mode",
        help="run the daemon and its dashboard (default)",
    )
    modes.add_argument(
        "--input", metavar="PATH", help="process one file, print its summary as JSON, exit 0 or 1"
    )
    modes.add_argument(
        "--drain",
        action="store_const",
        const="drain",
        dest="mode",
        help="recover, process everything queued, exit",
    )
    modes.add_argument(
        "--check-config",
        action="store_const",
        const="check_config",
        dest="mode",
        help="validate the pipeline config, exit 0 or 2",
    )
    modes.add_argument(
        "--test",
        nargs="?",
        const="",
        metavar="FILE",
        help="run the pipeline tests declared in the config (its tests key) and beside it "
        "(NAME.tests.json for NAME.json), or only those of FILE; exit 0 all pass, 1 a failure, "
        "2 a config error",
    )
    modes.add_argument(
        "--reprocess",
        metavar="FILTER",
        help="ask the running daemon (at --host/--port, with FOLDERD_TOKEN) which finished "
        "files FILTER matches, e.g. 'config=1a2b3c4d state=processed since=1h name=*.log' "
        "(each part optional); print them as JSON; with --yes, run them again under its "
        "config now. Exit 0 done, 1 the count changed meanwhile (nothing done), 3 no daemon",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --reprocess: do it, not only count"
    )
    modes.add_argument(
        "--sync",
        metavar="TARGET",
        help="ask the running daemon (at --host/--port, with FOLDERD_TOKEN) to walk a source "
        "now: a source's name, or a folder under its --source-roots; prints the job as JSON",
    )
    modes.add_argument(
        "--sync-cancel", metavar="JOB", type=int, help="cancel the running daemon's job JOB"
    )
    parser.add_argument("--glob", metavar="GLOB", help="with --sync: only the files it matches")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="with --sync: show its progress until it ends; "
        "exit 0 if nothing failed, 1 if a file did",
    )
    for s in SETTINGS:
        if s.secret:
            continue
        if s.switch:
            parser.add_argument(
                s.flag, dest=s.name, action="store_const", const="1", help=f"{s.help} [{s.env}]"
            )
        else:
            default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
            choices = getattr(s.parse, "choices", None)
            parser.add_argument(
                s.flag,
                dest=s.name,
                metavar=s.metavar or "|".join(choices or ()) or None,
                help=f"{s.help}{'' if '(default:' in s.help else f' (default: {default})'} "
                f"[{s.env}]",
            )
    return parser


def _refuse_unknown(environ: Mapping[str, str]) -> None:
    """Raise ConfigError for a `FOLDERD_*` variable that is no setting (a typo would
    otherwise be silently ignored), suggesting the nearest real one."""
    known = {s.env for s in SETTINGS}
    unknown = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)
    if not unknown:
        return
    first, *rest = unknown
    # Compared without the prefix, which every name shares and which would make anything look
    # close; the value is never shown: a misspelt FOLDERD_TOKEN holds a secret.
    close = difflib.get_close_matches(
        first.removeprefix(ENV_PREFIX).upper(), [s.name.upper() for s in SETTINGS], n=1
    )
    message = "unknown setting" + (f"; also unknown: {', '.join(rest)}" if rest else "")
    hint = (
        f"did you mean {ENV_PREFIX}{close[0]}?"
        if close
        else f"`python main.py --help` lists every {ENV_PREFIX}* variable"
    )
    raise ConfigError(first, message, hint)


def load(argv: Sequence[str], environ: Mapping[str, str], base: Path | None = None) -> Settings:
    """Parse argv and environ into Settings, or raise ConfigError naming the bad value or the
    unknown `FOLDERD_*` variable.

    A default path (`pipeline_config.json`, `watch_dir`, `results`) is taken inside `base`
    when given (main.py passes its own folder, so the defaults do not depend on the working
    directory); a path given as a flag or variable is left as given. argparse itself exits 2
    with a usage line on unknown flags.
    """
    args = build_parser().parse_args(list(argv))
    _refuse_unknown(environ)
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for s in SETTINGS:
        raw = None if s.secret else getattr(args, s.name)
        key = s.flag
        if raw is None and s.env in environ:
            raw, key = environ[s.env], s.env
        keys[s.name] = key
        if raw is None:
            default = s.default
            if base is not None and isinstance(default, Path) and not default.is_absolute():
                default = base / default
            values[s.name] = default
            continue
        try:
            values[s.name] = s.parse(raw)
        except ValueError as exc:  # its message is the expected form
            shown = "<hidden>" if s.secret else repr(raw)
            raise ConfigError(key, f"{exc}, got {shown}", s.help) from None
    if args.input is not None:
        return Settings(mode="input", input=Path(args.input), **values)
    if args.reprocess is not None:
        return Settings(mode="reprocess", input=None, reprocess=args.reprocess,
                        confirm=args.yes, **values)  # fmt: skip
    if args.sync is not None or args.sync_cancel is not None:
        sync = SyncRequest(args.sync, args.glob, args.wait, args.sync_cancel)
        return Settings(mode="sync", input=None, sync=sync, **values)
    if args.test is not None:
        return Settings(mode="test", input=None, test_file=Path(args.test) if args.test else None,
                        **values)  # fmt: skip
    settings = Settings(mode=args.mode or "watch", input=None, **values)
    _refuse_unprotected(settings, keys["host"])
    return settings


def _refuse_unprotected(settings: Settings, key: str) -> None:
    """Raise ConfigError for a dashboard that would be reachable from other machines with
    no token, unless the operator said so (`--allow-no-token`), as Jupyter refuses to."""
    serves = settings.mode == "watch" and not settings.no_dashboard
    if not serves or settings.token or settings.allow_no_token or is_loopback(settings.host):
        return
    raise ConfigError(
        key,
        f"the dashboard would listen on {settings.host!r}, not only on loopback, without "
        "FOLDERD_TOKEN: anyone who reaches it could upload, requeue and cancel files and, "
        "through the Preview, run any plugin code as this user",
        "set FOLDERD_TOKEN; or keep --host 127.0.0.1 behind a reverse proxy "
        "(--trusted-proxies); or pass --allow-no-token if every machine that can reach it is "
        "trusted",
    )


def defaults() -> Settings:
    """Settings as if no flag and no variable were given; tests start from this and change
    fields with `dataclasses.replace`."""
    return load([], {})
