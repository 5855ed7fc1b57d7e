"""folderd's command line: parse the settings, configure logging, wire the parts, run.

See `python main.py --help`. No logic of its own lives here.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from config import ConfigError
from config.loading import load
from config.settings import Settings
from daemon import DaemonError
from formats.names import log_fields

if TYPE_CHECKING:
    from processors import LoadedPipeline

# The default config, watch_dir and results are here, wherever folderd is started from.
HOME = Path(__file__).resolve().parent


def configure_logging(settings: Settings) -> None:
    """structlog once for the whole process: JSON lines off a terminal, console on one."""
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stdout.isatty() else "json"
    level = logging.DEBUG if settings.debug or settings.trace else logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        log_fields,  # names that are not UTF-8, written as the journal and pages show them
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory: Any = structlog.BytesLoggerFactory()
    else:
        renderer = structlog.dev.ConsoleRenderer()
        factory = structlog.PrintLoggerFactory()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Libraries log through the stdlib: warnings and up, to stderr.
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _load_file(path: Path) -> LoadedPipeline:
    from processors import load_file

    return load_file(path)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load(sys.argv[1:] if argv is None else argv, os.environ, HOME)
        configure_logging(settings)
        if settings.mode == "check_config":
            return _check_config(settings.config)
        if settings.mode == "reprocess":
            from dashboard.remote import reprocess

            return reprocess(settings)
        if settings.mode == "sync":
            from dashboard.client import sync

            return sync(settings)
        pipeline = _load_file(settings.config)
        if settings.mode == "input":
            return _run_input(settings, pipeline)
        if settings.mode == "test":
            return _run_tests(settings, pipeline)
        return _run_daemon(settings, pipeline)
    except ConfigError as exc:
        print(f"folderd: error: {exc}", file=sys.stderr)
        return 2
    except DaemonError as exc:
        print(f"folderd: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run_input(settings: Settings, pipeline: LoadedPipeline) -> int:
    from daemon.oneoff.single import run_single

    assert settings.input is not None  # the mode --input chose
    results = settings.results_dir.resolve()
    summary = run_single(settings.input, results, pipeline, fsync=not settings.no_fsync,
                         trace=settings.trace, config=settings.config)  # fmt: skip
    print(json.dumps(summary.to_json(), indent=2, ensure_ascii=False))
    return 0 if summary.ok else 1


def _check_config(config: Path) -> int:
    from config.pipeline_parser import read_json
    from config.testcases import declared
    from processors import check_file

    problems, outline = check_file(config)
    counts: dict[str, int] = {}
    if not problems:
        counts, problems = declared(config, read_json(config))
    for problem in problems:
        print(f"{config}: {problem}", file=sys.stderr)
    if problems:
        return 2
    where = ", ".join(f"{n} in {name}" for name, n in counts.items())
    print(outline)
    print(f"tests: {sum(counts.values())} declared" + (f" ({where})" if where else ""))
    return 0


def _run_tests(settings: Settings, pipeline: LoadedPipeline) -> int:
    from daemon.oneoff import testrun

    results = testrun.run_cases(pipeline, testrun.collect(settings.config, settings.test_file))
    if settings.log_format == "json":
        print(json.dumps(testrun.as_json(results), indent=2, ensure_ascii=False))
    else:
        print(testrun.as_text(results))
    return 0 if all(r.passed for r in results) else 1


def _run_daemon(settings: Settings, pipeline: LoadedPipeline) -> int:
    from daemon.control import DaemonAPI
    from daemon.core import Daemon
    from daemon.notify import SystemdNotifier

    daemon = Daemon(
        settings,
        pipeline,
        lambda: _load_file(settings.config),
        notifier=SystemdNotifier.from_environ(os.environ),
        worker_init=functools.partial(configure_logging, settings),  # spawned: not inherited
    )
    servers = []

    def start_dashboard() -> None:
        from dashboard.server import DashboardServer

        server = DashboardServer(DaemonAPI(daemon), settings)
        server.start()  # returns once it accepts connections; DaemonError if it cannot bind
        servers.append(server)

    with_dashboard = settings.mode == "watch" and not settings.no_dashboard
    try:
        code = daemon.run(
            drain=settings.mode == "drain", on_ready=start_dashboard if with_dashboard else None
        )
    finally:
        for server in servers:
            server.stop()
        _stop_resource_tracker()
    if daemon.drain_report is not None:  # --drain: its report, the last line on stdout
        print(json.dumps(daemon.drain_report, ensure_ascii=False), flush=True)
    return code


def _stop_resource_tracker(timeout: float = 5.0) -> None:
    """Stop multiprocessing's resource tracker, the helper process the first spawned worker
    started, and wait for it: left to itself it exits a moment after we do (on EOF), and
    systemd, which counts a unit's leftovers when its main process ends, would SIGKILL it
    and log that at every stop. Bounded: a tracker that does not go is left to that."""
    from multiprocessing import resource_tracker, util

    # First what exit would run: the workers' shared locks unlink their semaphores. A tracker
    # stopped before that reports them leaked, and their unlink at exit fails loudly.
    util._run_finalizers(0)  # type: ignore[attr-defined]
    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # CPython 3.8+
    if stop is not None:
        stopper = threading.Thread(target=stop, name="resource-tracker-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)


if __name__ == "__main__":
    sys.exit(main())
