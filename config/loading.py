"""Loading `Settings` from argv and an environ mapping, and refusing what cannot run.

A flag given on the command line wins over its `FOLDERD_*` variable, which wins over the
default. Every value is cast by its setting's cast, and every problem is one `ConfigError`
naming the flag or variable: a bad value (with the expected form), a `FOLDERD_*` variable
that is no setting (with the nearest real name), a dashboard open to the network without a
token. The rest of the code receives typed, valid `Settings` or never starts. Tests pass a
dict as `environ` instead of patching `os.environ`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config.casts import is_loopback
from config.cli import build_parser
from config.errors import ConfigError
from config.settings import ENV_PREFIX, SETTINGS, Settings, SyncRequest


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
            values[s.name] = s.cast(raw)
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
