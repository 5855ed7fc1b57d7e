"""Loading `pipeline_config.json` into a `PipelineConfig`, with located errors.

`read_json(path)` parses the file; `parse(raw)` checks its shape (unknown keys, wrong
types, bad regexes, bad names) and returns a `PipelineConfig` plus every problem found,
each a `ConfigError` whose key is a JSON path (`$.nodes[2].options`); single values are
checked by the rules in `config.values`, readers by `config.reader_parser`. A key left out
gets the default its dataclass in `config.pipeline` declares. What the options mean,
whether tags connect and whether plugins import is checked by `processors/`, which knows
the processors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from config import values
from config.checker import Checker
from config.errors import ConfigError
from config.markers import MarkersConfig, parse_markers
from config.notify import NotifyTarget, parse_notify
from config.pipeline import (
    OUTPUT_FORMATS,
    SIGNATURES,
    TOP_KEYS,
    NodeConfig,
    OutputConfig,
    PipelineConfig,
    PriorityRule,
    ReaderConfig,
    RouteConfig,
    TraceConfig,
    is_output_suffix,
)
from config.reader_parser import parse_reader
from config.sinks import S3SinkConfig, parse_sink
from config.sources import SourceConfig, parse_sources
from config.testcases import parse_cases

PRIORITY_RANGE = 1_000_000
_XLSX_KEYS = ("sheet", "sheet_by", "summary")  # output keys of the xlsx format only
_TRACE_KEYS = tuple(f.name for f in fields(TraceConfig))
_PRIORITY_KEYS = tuple(f.name for f in fields(PriorityRule))


def read_json(path: Path) -> dict[str, Any]:
    """Read and parse a config file; raise ConfigError naming the file (and line) if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        hint = "set it with --config FILE or FOLDERD_CONFIG"
        if not path.is_absolute():
            hint += f"; a relative path is taken from the working directory, {Path.cwd()}"
        raise ConfigError(str(path), f"cannot read the pipeline config: {exc}", hint) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError("$", f"expected a JSON object, got {values.kind(raw)}")
    return raw


def parse(
    raw: Any, environ: Mapping[str, str] | None = None
) -> tuple[PipelineConfig | None, list[ConfigError]]:
    """Check the shape of a parsed config; return it typed, and every problem found.
    `${VAR}` in sink strings is expanded from `environ` (the process's by default)."""
    env = os.environ if environ is None else environ
    c = Checker()
    if not isinstance(raw, dict):
        c.fail("$", f"expected a JSON object, got {values.kind(raw)}")
        return None, c.errors
    c.keys(raw, "$", TOP_KEYS)
    if raw.get("version", 1) != 1:
        c.fail("$.version", f"unsupported version {raw.get('version')!r}", "expected 1")
    description = c.typed(raw, "description", "$", str, PipelineConfig.description)
    base_reader = parse_reader(c, raw.get("reader", {}), "$.reader", ReaderConfig())
    routes = _routes(c, raw, base_reader)
    nodes = _nodes(c, raw)
    outputs = _outputs(c, raw, env)
    deliver = _deliver(c, raw, env)
    limits = c.typed(raw, "limits", "$", dict, {})
    c.keys(limits, "$.limits", ("max_hops", "max_expansion"))
    max_hops = c.integer(limits, "max_hops", "$.limits", PipelineConfig.max_hops, 1, 10_000)
    max_expansion = c.integer(
        limits, "max_expansion", "$.limits", PipelineConfig.max_expansion, 1, 1_000_000
    )
    trace_raw = c.typed(raw, "trace", "$", dict, {})
    c.keys(trace_raw, "$.trace", _TRACE_KEYS)
    trace = TraceConfig(
        first=c.integer(trace_raw, "first", "$.trace", TraceConfig.first, 0, 1_000_000),
        every=c.integer(trace_raw, "every", "$.trace", TraceConfig.every, 0, 1 << 40),
        max=c.integer(trace_raw, "max", "$.trace", TraceConfig.max, 0, 100_000),
    )
    if "tests" in raw:  # their shape only: `main.py --test` runs them (config.testcases)
        c.errors += parse_cases(raw["tests"], "$.tests", "", Path())[1]
    notify: tuple[NotifyTarget, ...] = ()
    if "notify" in raw:
        notify, notify_errors = parse_notify(raw["notify"], env)
        c.errors += notify_errors
    markers = MarkersConfig()
    if "markers" in raw:
        markers, marker_errors = parse_markers(raw["markers"])
        c.errors += marker_errors
    config = PipelineConfig(
        routes,
        nodes,
        outputs,
        max_hops=max_hops,
        max_expansion=max_expansion,
        trace=trace,
        description=description,
        priority=_priority(c, raw),
        deliver=deliver,
        notify=notify,
        markers=markers,
        sources=_sources(c, raw, base_reader, env),
    )
    return config, c.errors


def _sources(
    c: Checker, raw: dict[str, Any], base: ReaderConfig, env: Mapping[str, str]
) -> tuple[SourceConfig, ...]:
    """`sources`: folders watched in place, each with its own routes and deliver if any."""
    if "sources" not in raw:
        return ()
    sources, errors = parse_sources(
        raw["sources"],
        lambda items, path: _route_list(c, items, path.removeprefix("$."), base),
        lambda items, path: _deliver_list(c, items, path.removeprefix("$."), env),
        env,
    )
    c.errors += errors
    return sources


def _priority(c: Checker, raw: dict[str, Any]) -> tuple[PriorityRule, ...]:
    rules = []
    for path, item in c.objects(c.typed(raw, "priority", "$", list, []), "priority"):
        c.keys(item, path, _PRIORITY_KEYS)
        rx = c.regex(item, "regex", path)
        from_group = rx is not None and "priority" in rx.groupindex
        if not any(k in item for k in ("folder", "glob", "regex")):
            c.fail(path, "a rule needs a folder, a glob or a regex to match waiting files")
        if "priority" not in item and not from_group:
            c.fail(f"{path}.priority", "missing", "a number, or a regex group named priority")
        rules.append(
            PriorityRule(
                priority=c.integer(
                    item, "priority", path, PriorityRule.priority, -PRIORITY_RANGE, PRIORITY_RANGE
                ),
                folder=c.typed(item, "folder", path, str, PriorityRule.folder),
                glob=c.typed(item, "glob", path, str, PriorityRule.glob),
                regex=rx,
            )
        )
    return tuple(rules)


def _routes(c: Checker, raw: dict[str, Any], base: ReaderConfig) -> tuple[RouteConfig, ...]:
    return _route_list(c, c.typed(raw, "routes", "$", list, [{"start": "end"}]), "routes", base)


def _route_list(c: Checker, items: Any, key: str, base: ReaderConfig) -> tuple[RouteConfig, ...]:
    """The route list at `$.<key>` (the top-level one, or a source's own)."""
    if not isinstance(items, list):
        c.fail(f"$.{key}", f"expected a list, got {values.kind(items)}")
        return ()
    routes = []
    for path, item in c.objects(items, key):
        c.keys(item, path, ("glob", "regex", "head", "signature", "start", "reader"))
        if "start" not in item:
            c.fail(f"{path}.start", "missing", "the tag this file's lines start at")
            continue
        start = c.tag(item["start"], f"{path}.start")
        reader = parse_reader(c, item.get("reader", {}), f"{path}.reader", base)
        routes.append(
            RouteConfig(
                start=start or "end",
                glob=c.typed(item, "glob", path, str, RouteConfig.glob),
                regex=c.regex(item, "regex", path),
                head=c.regex(item, "head", path),
                signature=c.value(
                    values.choice, item, "signature", path, RouteConfig.signature, SIGNATURES
                ),
                reader=reader,
            )
        )
    if not items:
        c.fail(f"$.{key}", "no routes", 'add at least {"start": "<tag>"}')
    return tuple(routes)


def _nodes(c: Checker, raw: dict[str, Any]) -> tuple[NodeConfig, ...]:
    items = c.typed(raw, "nodes", "$", list, [])
    nodes = []
    names: dict[str, str] = {}
    for path, item in c.objects(items, "nodes"):
        c.keys(item, path, ("name", "tag", "use", "to", "options"))
        missing = [key for key in ("tag", "use") if key not in item]
        for key in missing:
            c.fail(f"{path}.{key}", "missing")
        use = c.typed(item, "use", path, str, None)
        tags = c.tags(item, "tag", path, ())
        if missing or use is None or not tags:
            continue
        name = c.typed(item, "name", path, str, None) or f"{use}@{tags[0]}"
        if name in names:
            c.fail(f"{path}.name", f"duplicate node name {name!r}", f"also at {names[name]}")
        names[name] = path
        nodes.append(
            NodeConfig(
                name=name,
                tags=tags,
                use=use,
                to=c.tags(item, "to", path, ("end",)),
                options=c.typed(item, "options", path, dict, {}),
                path=path,
            )
        )
    return tuple(nodes)


def _outputs(c: Checker, raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, OutputConfig]:
    items = c.typed(raw, "outputs", "$", dict, {})
    outputs = {"end": OutputConfig("end", "out")}
    for tag, spec in items.items():
        path = f"$.outputs.{tag}"
        if c.tag(tag, path) is None:
            continue
        if not isinstance(spec, dict):
            c.fail(path, f"expected an object (may be empty), got {values.kind(spec)}")
            continue
        c.keys(spec, path, ("suffix", "sink", "format", *_XLSX_KEYS))
        fmt = c.value(values.choice, spec, "format", path, OutputConfig.format, OUTPUT_FORMATS)
        default = "xlsx" if fmt == "xlsx" else "out" if tag == "end" else tag
        suffix = c.typed(spec, "suffix", path, str, default)
        if not is_output_suffix(suffix):
            where = f"{path}.suffix" if "suffix" in spec else path
            c.fail(
                where,
                f"output file suffix {suffix!r} is not allowed",
                "letters, digits, '_' and '-' only, and not 'json' (the summary's)",
            )
            continue
        sink = None
        if "sink" in spec:
            sink, errors = parse_sink(spec["sink"], f"{path}.sink", f"outputs.{tag}", env)
            c.errors += errors
        if fmt != "xlsx":
            for key in _XLSX_KEYS:
                if key in spec:
                    c.fail(f"{path}.{key}", "only meaningful for an xlsx output",
                           'add "format": "xlsx"')  # fmt: skip
        elif "sink" in spec:
            c.fail(f"{path}.sink", "an xlsx output is a workbook in results/, not for a sink")
        outputs[tag] = OutputConfig(
            tag,
            suffix,
            sink,
            fmt,
            sheet=c.nonempty(spec, "sheet", path, OutputConfig.sheet),
            sheet_by=c.nonempty(spec, "sheet_by", path, OutputConfig.sheet_by),
            summary=c.typed(spec, "summary", path, bool, OutputConfig.summary),
        )
    seen: dict[str, str] = {}
    for out in outputs.values():
        shared = out.format == "xlsx" and outputs[seen.get(out.suffix, out.tag)].format == "xlsx"
        if out.suffix in seen and not shared:  # xlsx outputs may share one workbook
            c.fail(
                f"$.outputs.{out.tag}",
                f"suffix {out.suffix!r} already used by output {seen[out.suffix]!r}",
            )
        seen[out.suffix] = out.tag
    return outputs


def _deliver(c: Checker, raw: dict[str, Any], env: Mapping[str, str]) -> tuple[S3SinkConfig, ...]:
    """`deliver`: the input itself, uploaded to each S3 sink listed."""
    return _deliver_list(c, c.typed(raw, "deliver", "$", list, []), "deliver", env)


def _deliver_list(
    c: Checker, items: Any, key: str, env: Mapping[str, str]
) -> tuple[S3SinkConfig, ...]:
    """The deliver list at `$.<key>` (the top-level one, or a source's own)."""
    if not isinstance(items, list):
        c.fail(f"$.{key}", f"expected a list, got {values.kind(items)}")
        return ()
    sinks = []
    for path, item in c.objects(items, key):
        sink, errors = parse_sink(item, path, path.removeprefix("$."), env, only=("s3",))
        c.errors += errors
        if isinstance(sink, S3SinkConfig):
            sinks.append(sink)
    return tuple(sinks)
