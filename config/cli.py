"""The command line: the mode flags, then one flag per setting of `SETTINGS`.

`main.py --help` is this parser's; `config.loading` parses argv with it, and
`config.reference` reads the mode flags from it for the manual.
"""

from __future__ import annotations

import argparse

from config.settings import SETTINGS


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
    _add_modes(parser)
    _add_settings(parser)
    return parser


def _add_modes(parser: argparse.ArgumentParser) -> None:
    """The modes (one at most; the default is --watch) and the flags that qualify them."""
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


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """A flag per setting but the secret ones: a switch takes no value; the others show
    their default (unless their help names it) and their variable."""
    for s in SETTINGS:
        if s.secret:
            continue
        if s.switch:
            parser.add_argument(
                s.flag, dest=s.name, action="store_const", const="1", help=f"{s.help} [{s.env}]"
            )
        else:
            default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
            parser.add_argument(
                s.flag,
                dest=s.name,
                metavar=s.metavar or "|".join(s.choices) or None,
                help=f"{s.help}{'' if '(default:' in s.help else f' (default: {default})'} "
                f"[{s.env}]",
            )
