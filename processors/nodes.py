"""Nodes: resolving `use` to a processor, checking its options, and running it per file.

`build_spec()` checks one node of the config into a `NodeSpec`: its processor (a built-in
from `processors.registry`, or a plugin imported by dotted path `pkg.mod:Name`), its
options checked against its `__init__` and by constructing it once, and the tags it can
emit. A spec is plain data, so a loaded pipeline pickles to worker processes as data; the
processor is named by its `use` (a reference, like pickle's own for classes) and
`NodeSpec.factory()` imports it where the pipeline is built. A `Runner` wraps the fresh
instance a file gets: it feeds it batches, counts lines and time, and turns anything it
raises into a `ProcessorError` naming the node, the tag and the input line.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from config import ConfigError
from config.pipeline import NodeConfig
from processors.base import Context, Line, Outbox, ProcessorError
from processors.registry import BUILTINS


class FunctionProcessor:
    """Adapts a plain function `line -> str | None` (None drops the line)."""

    def __init__(self, fn: Callable[[Line], Any]) -> None:
        self.fn = fn

    def process(self, tag: str, line: Line) -> Any:
        return self.fn(line)


@dataclass(frozen=True, eq=False)
class NodeSpec:
    """A checked node: what it runs (`use` with `options`), the tags it consumes and may
    emit to, and where it is in the config."""

    name: str
    use: str
    tags: tuple[str, ...]
    to: tuple[str, ...]
    emits: tuple[str, ...]
    options: dict[str, Any]
    path: str

    def factory(self) -> Callable[[], Any]:
        """What makes this node's processor for one file (imports a plugin's module)."""
        obj = resolve(self.use, self.path)
        if isinstance(obj, type):
            return functools.partial(obj, **self.options)
        return functools.partial(FunctionProcessor, obj)


def start_runner(spec: NodeSpec, factory: Callable[[], Any], ctx: Context) -> Runner:
    """A fresh processor for one file, started, in the runner that suits it."""
    try:
        proc = factory()
        start = getattr(proc, "start", None)
        if start is not None:
            start(ctx)
    except ProcessorError as exc:
        raise _located(exc, spec.name, None, None) from None
    except Exception as exc:
        raise _wrapped(exc, spec.name, None, None) from exc
    if callable(getattr(proc, "process_batch", None)):
        return BatchRunner(spec, proc)
    return LineRunner(spec, proc)


class Runner:
    """Feeds one processor instance and keeps its counters for the file's summary."""

    def __init__(self, spec: NodeSpec, proc: Any) -> None:
        self.spec = spec
        self.proc = proc
        self.default = spec.to[0]
        self.lines_in = 0
        self.lines_out = 0
        self.errors = 0
        self.seconds = 0.0
        self.emitted: dict[str, int] = {}  # lines out by tag (the engine's Outbox counts)

    def stats(self) -> dict[str, Any]:
        return {
            "lines_in": self.lines_in,
            "lines_out": self.lines_out,
            "to": dict(self.emitted),
            "errors": self.errors,
            "seconds": round(self.seconds, 6),
        }

    def run(self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox) -> None:
        raise NotImplementedError

    def flush(self, out: Outbox) -> None:
        flush_batch = getattr(self.proc, "flush_batch", None)
        flush = getattr(self.proc, "flush", None)
        if flush is None and flush_batch is None:
            return
        before = out.total
        started = perf_counter()
        try:
            buckets: dict[str, list[Line]] = {}
            if flush_batch is not None:  # a built-in that names the lines it emits
                flush_batch(out)
            elif flush is not None:
                _collect(flush(), self.default, buckets)
        except ProcessorError as exc:
            self.errors += 1
            raise _located(exc, self.spec.name, self.spec.tags[0], None) from None
        except Exception as exc:
            self.errors += 1
            raise _wrapped(exc, self.spec.name, self.spec.tags[0], None) from exc
        finally:
            self.seconds += perf_counter() - started
        for tag, values in buckets.items():
            out.put(tag, values, [0] * len(values))
        self.lines_out += out.total - before


class LineRunner(Runner):
    """Calls `process(tag, line)` once per line (user plugins, stateful built-ins)."""

    def run(self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox) -> None:
        process = self.proc.process
        default = self.default
        dv: list[Line] = []
        do: list[int] = []
        other: dict[str, tuple[list[Line], list[int]]] = {}
        i = 0
        started = perf_counter()
        try:
            for i, value in enumerate(values):
                result = process(tag, value)
                if result is None:
                    continue
                kind = result.__class__
                if kind is str or kind is dict:
                    dv.append(result)
                    do.append(origins[i])
                    continue
                for next_tag, line in result:
                    if next_tag == default:
                        dv.append(line)
                        do.append(origins[i])
                    else:
                        bucket = other.get(next_tag)
                        if bucket is None:
                            bucket = other[next_tag] = ([], [])
                        bucket[0].append(line)
                        bucket[1].append(origins[i])
        except ProcessorError as exc:
            self.errors += 1
            raise _located(exc, self.spec.name, tag, origins[i] or None) from None
        except Exception as exc:
            self.errors += 1
            raise _wrapped(exc, self.spec.name, tag, origins[i] or None) from exc
        finally:
            self.seconds += perf_counter() - started
        self.lines_in += len(values)
        self.lines_out += len(dv)
        out.put(default, dv, do)
        for next_tag, (vals, origs) in other.items():
            self.lines_out += len(vals)
            out.put(next_tag, vals, origs)


class BatchRunner(Runner):
    """Calls a built-in's `process_batch` once per batch (the fast path)."""

    def run(self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox) -> None:
        before = out.total
        started = perf_counter()
        try:
            self.proc.process_batch(tag, values, origins, out)
        except ProcessorError as exc:
            self.errors += 1
            raise _located(exc, self.spec.name, tag, None) from None
        except Exception as exc:
            self.errors += 1
            raise _wrapped(exc, self.spec.name, tag, self._locate(tag, values, origins)) from exc
        finally:
            self.seconds += perf_counter() - started
        self.lines_in += len(values)
        self.lines_out += out.total - before

    def _locate(self, tag: str, values: list[Line], origins: Sequence[int]) -> int | None:
        # batch built-ins are stateless per line: replaying them one by one finds the line
        for value, origin in zip(values, origins, strict=True):
            try:
                self.proc.process(tag, value)
            except Exception:
                return origin or None
        return None


def _collect(result: Any, default: str, buckets: dict[str, list[Line]]) -> None:
    if result is None:
        return
    if result.__class__ is str or result.__class__ is dict:
        buckets.setdefault(default, []).append(result)
        return
    for tag, line in result:
        buckets.setdefault(tag, []).append(line)


def _located(exc: ProcessorError, name: str, tag: str | None, line: int | None) -> ProcessorError:
    exc.processor = exc.processor or name
    exc.tag = exc.tag or tag
    exc.line = exc.line or line
    return exc


def _wrapped(exc: Exception, name: str, tag: str | None, line: int | None) -> ProcessorError:
    where = f" at line {line}" if line else ""
    tb = exc.__traceback__  # its first frame is the runner's own: start at the processor
    return ProcessorError(
        f"processor {name!r} raised {type(exc).__name__}{where}: {exc}",
        processor=name,
        tag=tag,
        line=line,
        error_type=type(exc).__name__,
        traceback="".join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else tb)),
    )


def resolve(use: str, path: str) -> Any:
    """A built-in by name, or `module.sub:Name` imported from sys.path (and the cwd)."""
    if use in BUILTINS:
        return BUILTINS[use]
    if ":" not in use:
        raise ConfigError(
            f"{path}.use",
            f"unknown processor {use!r}",
            f"a built-in ({', '.join(sorted(BUILTINS))}) or a dotted path "
            "like my_pkg.module:MyProcessor",
        )
    module_name, _, attr = use.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except MemoryError:  # the machine's (a worker's memory cap), not the config's
        raise
    except Exception as exc:
        raise ConfigError(
            f"{path}.use", f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{path}.use", f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def build_spec(node: NodeConfig) -> NodeSpec:
    """Resolve and check one node; raise ConfigError located in the config if it is bad."""
    obj = resolve(node.use, node.path)
    if inspect.isclass(obj):
        if not callable(getattr(obj, "process", None)):
            raise ConfigError(f"{node.path}.use", f"{node.use} has no process(tag, line) method")
        _check_signature(obj, node)
        try:
            probe = obj(**node.options)
        except ConfigError as exc:
            raise ConfigError(f"{node.path}.options.{exc.key}", exc.message, exc.hint) from None
        except Exception as exc:
            raise ConfigError(
                f"{node.path}.options",
                f"{node.use} rejected its options: {type(exc).__name__}: {exc}",
            ) from None
        targets = getattr(probe, "targets", None)
        emits = tuple(targets(node.to)) if callable(targets) else node.to
    elif callable(obj):
        if node.options:
            raise ConfigError(
                f"{node.path}.options",
                "a plain function takes no options",
                "write a class whose __init__ takes them",
            )
        emits = node.to
    else:
        raise ConfigError(f"{node.path}.use", f"{node.use} is neither a class nor a function")
    return NodeSpec(node.name, node.use, node.tags, node.to, emits, node.options, node.path)


def _check_signature(cls: type, node: NodeConfig) -> None:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in node.options:
        if key not in accepted:
            raise ConfigError(
                f"{node.path}.options.{key}",
                f"unknown option for {node.use}",
                f"options: {', '.join(accepted) or 'none'}",
            )
    for name, p in params.items():
        if (
            p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and name not in node.options
        ):
            raise ConfigError(f"{node.path}.options.{name}", f"missing (required by {node.use})")
