"""Loading `pipeline_config.json` into typed objects, with located errors.

`read_json(path)` parses the file; `parse(raw)` checks its shape (unknown keys, wrong
types, bad regexes, bad names) and returns a `PipelineConfig` plus every problem found,
each a `ConfigError` whose key is a JSON path (`$.nodes[2].options`); single values are
checked by the rules in `config.values`. What the options mean, whether tags connect and
whether plugins import is checked by `processors/`, which knows the processors.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import values
from config.errors import ConfigError
from config.markers import MarkersConfig, parse_markers
from config.notify import NotifyTarget, parse_notify
from config.sinks import S3SinkConfig, SinkConfig, parse_sink
from config.sources import SourceConfig, parse_sources
from config.testcases import parse_cases

ERROR_POLICIES = ("strict", "replace", "ignore", "backslashreplace", "surrogateescape")
READER_TYPES = ("text", "csv", "excel", "none")  # none: no lines read (only hashed, delivered)
SIGNATURES = ("excel",)  # what a route's `signature` may name (processors.file_routes)
LONG_LINES = ("fail", "truncate", "skip")  # what a line over reader.max_line_bytes does
TOP_KEYS = ("version", "description", "reader", "routes", "nodes", "outputs", "deliver", "limits",
            "trace", "priority", "tests", "notify", "markers", "sources")  # fmt: skip
SUMMARY_SUFFIX = "json"  # the daemon writes a file's summary to <rel_path>.json
READER_KEYS = (
    "type",
    "encoding",
    "errors",
    "delimiter",
    "quotechar",
    "header",
    "max_line_bytes",
    "long_lines",
    "max_gzip_ratio",
    "max_decompressed_mb",
    "sheets",
    "max_workbook_mb",
    "max_unpacked_mb",
    "max_unpacked_ratio",
    "max_sheet_cells",
    "max_text_mb",
    "sheet_field",
    "row_field",
)
_ONLY_FOR = {  # reader keys meaningful for some reader types only
    "delimiter": ("csv",),
    "quotechar": ("csv",),
    "header": ("csv", "excel"),
    "sheets": ("excel",),
    "max_workbook_mb": ("excel",),
    "max_unpacked_mb": ("excel",),
    "max_unpacked_ratio": ("excel",),
    "max_sheet_cells": ("excel",),
    "max_text_mb": ("excel",),
    "sheet_field": ("excel",),
    "row_field": ("excel",),
}
_OUTPUT_SUFFIX = re.compile(r"[A-Za-z0-9_-]+")


def is_output_suffix(suffix: str) -> bool:
    """The one rule for an output file's suffix (the config checks it, the worker relies
    on it): letters, digits, `_` and `-`, and never the summary's."""
    return _OUTPUT_SUFFIX.fullmatch(suffix) is not None and suffix != SUMMARY_SUFFIX


@dataclass(frozen=True)
class ReaderConfig:
    """How a file's bytes become lines (gzip is always detected by its magic bytes)."""

    type: str = "text"
    encoding: str = "utf-8"
    errors: str = "strict"
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    max_line_bytes: int = 16 << 20  # a line's size in UTF-8, its "\n" not counted
    long_lines: str = "fail"  # one of LONG_LINES
    max_gzip_ratio: int | None = 200  # decompressed bytes per compressed byte; None: no limit
    max_decompressed_mb: int | None = None  # a gzip file's decompressed size; None: no limit
    sheets: tuple[str, ...] | None = None  # the Excel sheets to read; None: every worksheet
    max_workbook_mb: int = 100  # the workbook file's size (the Excel reader holds it whole)
    max_unpacked_mb: int = 1024  # what a workbook's zip parts unpack to, all together
    max_unpacked_ratio: int | None = 100  # unpacked bytes per byte of workbook; None: no limit
    max_sheet_cells: int = 10_000_000  # a sheet's grid, first to last cell (calamine's Range)
    max_text_mb: int = 256  # the text held at once: shared strings and the cells' text
    sheet_field: str | None = "sheet"  # the record field with the sheet's name; None: none
    row_field: str | None = "row"  # the record field with the row's number in its sheet


@dataclass(frozen=True)
class RouteConfig:
    """A file-level rule: the first route whose conditions all hold picks the start tag."""

    start: str
    glob: str | None = None
    regex: re.Pattern[str] | None = None
    head: re.Pattern[str] | None = None
    signature: str | None = None  # "excel": the file's first bytes are a workbook's
    reader: ReaderConfig = field(default_factory=ReaderConfig)


@dataclass(frozen=True)
class NodeConfig:
    name: str
    tags: tuple[str, ...]
    use: str
    to: tuple[str, ...]
    options: dict[str, Any]
    path: str  # "$.nodes[3]", for errors found later


OUTPUT_FORMATS = ("lines", "xlsx")
_XLSX_KEYS = ("sheet", "sheet_by", "summary")  # output keys of the xlsx format only


@dataclass(frozen=True)
class OutputConfig:
    tag: str
    suffix: str
    sink: SinkConfig | None = None  # delivered there instead of results/<file>.<suffix>
    format: str = "lines"  # one of OUTPUT_FORMATS; xlsx outputs sharing a suffix share a book
    sheet: str | None = None  # xlsx: the sheet's name (the tag's by default)
    sheet_by: str | None = None  # xlsx: a sheet per value of this record field
    summary: bool = False  # xlsx: a first sheet with the file's aggregates


@dataclass(frozen=True)
class TraceConfig:
    first: int = 50
    every: int = 1000
    max: int = 1000


@dataclass(frozen=True)
class PriorityRule:
    """Claim order: the first rule that matches a waiting file gives its priority (higher is
    claimed sooner; files no rule matches have 0; equal priorities go by arrival)."""

    priority: int = 0
    folder: str | None = None  # the first folder of its path under unprocessed/
    glob: str | None = None  # its name
    regex: re.Pattern[str] | None = None  # its path; a group `priority` gives the number


@dataclass(frozen=True)
class PipelineConfig:
    routes: tuple[RouteConfig, ...]
    nodes: tuple[NodeConfig, ...]
    outputs: dict[str, OutputConfig]
    max_hops: int = 64
    max_expansion: int = 1000
    trace: TraceConfig = field(default_factory=TraceConfig)
    description: str = ""
    priority: tuple[PriorityRule, ...] = ()
    deliver: tuple[S3SinkConfig, ...] = ()  # where the input itself is delivered
    notify: tuple[NotifyTarget, ...] = ()  # webhooks for its events (config.notify)
    markers: MarkersConfig = field(default_factory=MarkersConfig)  # ready markers, batches
    sources: tuple[SourceConfig, ...] = ()  # folders watched in place (config.sources)

    @property
    def sinks(self) -> tuple[SinkConfig, ...]:
        """Every sink, outputs' first, in the order a file's deliveries run (then the
        sources' own `deliver` sinks)."""
        outs = tuple(o.sink for o in self.outputs.values() if o.sink is not None)
        own = tuple(s for src in self.sources for s in src.deliver or () if s not in self.deliver)
        return outs + self.deliver + tuple(dict.fromkeys(own))


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


class _Checker:
    """Collects errors while walking the raw dict, so every problem is reported at once."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def fail(self, key: str, message: str, hint: str = "") -> None:
        self.errors.append(ConfigError(key, message, hint))

    def keys(self, obj: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown key", f"allowed: {', '.join(allowed)}")

    def value(
        self,
        check: Callable[..., Any],
        obj: dict[str, Any],
        key: str,
        path: str,
        default: Any,
        *args: Any,
    ) -> Any:
        """`check(f"{path}.{key}", obj[key], *args)`; `default` if absent or a problem."""
        if key not in obj:
            return default
        try:
            return check(f"{path}.{key}", obj[key], *args)
        except ConfigError as exc:
            self.errors.append(exc)
            return default

    def typed(self, obj: dict[str, Any], key: str, path: str, kind: type, default: Any) -> Any:
        return self.value(values.typed, obj, key, path, default, kind)

    def integer(
        self, obj: dict[str, Any], key: str, path: str, default: int, low: int, high: int
    ) -> int:
        return self.value(values.integer, obj, key, path, default, low, high)

    def limit(
        self, obj: dict[str, Any], key: str, path: str, default: int | None, high: int
    ) -> int | None:
        return self.value(values.limit, obj, key, path, default, high)

    def regex(self, obj: dict[str, Any], key: str, path: str) -> re.Pattern[str] | None:
        return self.value(values.regex, obj, key, path, None)

    def tag(self, value: Any, path: str) -> str | None:
        try:
            return values.tag(path, value)
        except ConfigError as exc:
            self.errors.append(exc)
            return None

    def tags(
        self, obj: dict[str, Any], key: str, path: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        if key not in obj:
            return default
        value = obj[key]
        if isinstance(value, str):
            one = self.tag(value, f"{path}.{key}")
            return default if one is None else (one,)
        if not isinstance(value, list) or not value:
            got = values.kind(value)
            self.fail(f"{path}.{key}", f"expected a tag or a non-empty list of tags, got {got}")
            return default
        items = [self.tag(v, f"{path}.{key}[{i}]") for i, v in enumerate(value)]
        return tuple(t for t in items if t is not None)


def parse(
    raw: Any, environ: Mapping[str, str] | None = None
) -> tuple[PipelineConfig | None, list[ConfigError]]:
    """Check the shape of a parsed config; return it typed, and every problem found.
    `${VAR}` in sink strings is expanded from `environ` (the process's by default)."""
    env = os.environ if environ is None else environ
    c = _Checker()
    if not isinstance(raw, dict):
        c.fail("$", f"expected a JSON object, got {values.kind(raw)}")
        return None, c.errors
    c.keys(raw, "$", TOP_KEYS)
    if raw.get("version", 1) != 1:
        c.fail("$.version", f"unsupported version {raw.get('version')!r}", "expected 1")
    description = c.typed(raw, "description", "$", str, "")
    base_reader = _reader(c, raw.get("reader", {}), "$.reader", ReaderConfig())
    routes = _routes(c, raw, base_reader)
    nodes = _nodes(c, raw)
    outputs = _outputs(c, raw, env)
    deliver = _deliver(c, raw, env)
    limits = c.typed(raw, "limits", "$", dict, {})
    c.keys(limits, "$.limits", ("max_hops", "max_expansion"))
    max_hops = c.integer(limits, "max_hops", "$.limits", 64, 1, 10_000)
    max_expansion = c.integer(limits, "max_expansion", "$.limits", 1000, 1, 1_000_000)
    trace_raw = c.typed(raw, "trace", "$", dict, {})
    c.keys(trace_raw, "$.trace", ("first", "every", "max"))
    trace = TraceConfig(
        first=c.integer(trace_raw, "first", "$.trace", 50, 0, 1_000_000),
        every=c.integer(trace_raw, "every", "$.trace", 1000, 0, 1 << 40),
        max=c.integer(trace_raw, "max", "$.trace", 1000, 0, 100_000),
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
        max_hops,
        max_expansion,
        trace,
        description,
        priority=_priority(c, raw),
        deliver=deliver,
        notify=notify,
        markers=markers,
        sources=_sources(c, raw, base_reader, env),
    )
    return config, c.errors


def _sources(
    c: _Checker, raw: dict[str, Any], base: ReaderConfig, env: Mapping[str, str]
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


PRIORITY_RANGE = 1_000_000


def _priority(c: _Checker, raw: dict[str, Any]) -> tuple[PriorityRule, ...]:
    rules = []
    for path, item in _objects(c, c.typed(raw, "priority", "$", list, []), "priority"):
        c.keys(item, path, ("priority", "folder", "glob", "regex"))
        rx = c.regex(item, "regex", path)
        from_group = rx is not None and "priority" in rx.groupindex
        if not any(k in item for k in ("folder", "glob", "regex")):
            c.fail(path, "a rule needs a folder, a glob or a regex to match waiting files")
        if "priority" not in item and not from_group:
            c.fail(f"{path}.priority", "missing", "a number, or a regex group named priority")
        rules.append(
            PriorityRule(
                priority=c.integer(item, "priority", path, 0, -PRIORITY_RANGE, PRIORITY_RANGE),
                folder=c.typed(item, "folder", path, str, None),
                glob=c.typed(item, "glob", path, str, None),
                regex=rx,
            )
        )
    return tuple(rules)


def _reader(c: _Checker, raw: Any, path: str, base: ReaderConfig) -> ReaderConfig:
    if not isinstance(raw, dict):
        c.fail(path, f"expected an object, got {values.kind(raw)}")
        return base
    c.keys(raw, path, READER_KEYS)
    kind = c.typed(raw, "type", path, str, base.type)
    if kind not in READER_TYPES:
        c.fail(f"{path}.type", f"unknown reader {kind!r}", f"one of {', '.join(READER_TYPES)}")
        kind = base.type
    encoding = c.typed(raw, "encoding", path, str, base.encoding)
    try:
        codecs.lookup(encoding)
    except LookupError:
        c.fail(f"{path}.encoding", f"unknown encoding {encoding!r}")
        encoding = base.encoding
    errors = c.typed(raw, "errors", path, str, base.errors)
    if errors not in ERROR_POLICIES:
        c.fail(
            f"{path}.errors",
            f"unknown error policy {errors!r}",
            f"one of {', '.join(ERROR_POLICIES)}",
        )
        errors = base.errors
    delimiter = c.typed(raw, "delimiter", path, str, base.delimiter)
    quotechar = c.typed(raw, "quotechar", path, str, base.quotechar)
    for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
        if len(value) != 1:
            c.fail(f"{path}.{key}", f"expected one character, got {value!r}")
    for key, kinds in _ONLY_FOR.items():
        if key in raw and kind not in kinds:
            c.fail(
                f"{path}.{key}",
                f"only meaningful for the {' and '.join(kinds)} reader",
                f'add "type": "{kinds[0]}"',
            )
    long_lines = c.value(values.choice, raw, "long_lines", path, base.long_lines, LONG_LINES)
    set_here = [key for key in ("long_lines", "type") if key in raw]
    if kind == "csv" and long_lines != "fail" and set_here:
        # a CSV record may span lines: cutting one out would tear the records around it
        c.fail(
            f"{path}.{set_here[0]}",
            f"long_lines {long_lines!r} is not possible with the csv reader",
            'set "long_lines": "fail" for it',
        )
    return ReaderConfig(
        type=kind,
        encoding=encoding,
        errors=errors,
        delimiter=delimiter[:1] or ",",
        quotechar=quotechar[:1] or '"',
        header=c.typed(raw, "header", path, bool, base.header),
        max_line_bytes=c.integer(raw, "max_line_bytes", path, base.max_line_bytes, 1, 1 << 30),
        long_lines=long_lines,
        max_gzip_ratio=c.limit(raw, "max_gzip_ratio", path, base.max_gzip_ratio, 10_000),
        max_decompressed_mb=c.limit(
            raw, "max_decompressed_mb", path, base.max_decompressed_mb, 1 << 30
        ),
        sheets=_sheets(c, raw, path, base.sheets),
        max_workbook_mb=c.integer(raw, "max_workbook_mb", path, base.max_workbook_mb, 1, 1 << 20),
        max_unpacked_mb=c.integer(raw, "max_unpacked_mb", path, base.max_unpacked_mb, 1, 1 << 30),
        max_unpacked_ratio=c.limit(
            raw, "max_unpacked_ratio", path, base.max_unpacked_ratio, 100_000
        ),
        max_sheet_cells=c.integer(raw, "max_sheet_cells", path, base.max_sheet_cells, 1, 1 << 40),
        max_text_mb=c.integer(raw, "max_text_mb", path, base.max_text_mb, 1, 1 << 30),
        sheet_field=_field_name(c, raw, "sheet_field", path, base.sheet_field),
        row_field=_field_name(c, raw, "row_field", path, base.row_field),
    )


def _sheets(
    c: _Checker, raw: dict[str, Any], path: str, base: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if raw.get("sheets", base) is None:
        return None
    names = c.value(values.strings, raw, "sheets", path, base)
    return None if names is None else tuple(names)


def _field_name(
    c: _Checker, raw: dict[str, Any], key: str, path: str, base: str | None
) -> str | None:
    if raw.get(key, base) is None:
        return None
    return c.value(_nonempty, raw, key, path, base)


def _nonempty(key: str, value: Any) -> str:
    return values.string(key, value, empty=False)


def _objects(c: _Checker, items: list[Any], key: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON path, item) for each object in the list at `$.key`; anything else is a problem."""
    for i, item in enumerate(items):
        path = f"$.{key}[{i}]"
        if isinstance(item, dict):
            yield path, item
        else:
            c.fail(path, f"expected an object, got {values.kind(item)}")


def _routes(c: _Checker, raw: dict[str, Any], base: ReaderConfig) -> tuple[RouteConfig, ...]:
    return _route_list(c, c.typed(raw, "routes", "$", list, [{"start": "end"}]), "routes", base)


def _route_list(c: _Checker, items: Any, key: str, base: ReaderConfig) -> tuple[RouteConfig, ...]:
    """The route list at `$.<key>` (the top-level one, or a source's own)."""
    if not isinstance(items, list):
        c.fail(f"$.{key}", f"expected a list, got {values.kind(items)}")
        return ()
    routes = []
    for path, item in _objects(c, items, key):
        c.keys(item, path, ("glob", "regex", "head", "signature", "start", "reader"))
        if "start" not in item:
            c.fail(f"{path}.start", "missing", "the tag this file's lines start at")
            continue
        start = c.tag(item["start"], f"{path}.start")
        reader = _reader(c, item.get("reader", {}), f"{path}.reader", base)
        routes.append(
            RouteConfig(
                start=start or "end",
                glob=c.typed(item, "glob", path, str, None),
                regex=c.regex(item, "regex", path),
                head=c.regex(item, "head", path),
                signature=c.value(values.choice, item, "signature", path, None, SIGNATURES),
                reader=reader,
            )
        )
    if not items:
        c.fail(f"$.{key}", "no routes", 'add at least {"start": "<tag>"}')
    return tuple(routes)


def _nodes(c: _Checker, raw: dict[str, Any]) -> tuple[NodeConfig, ...]:
    items = c.typed(raw, "nodes", "$", list, [])
    nodes = []
    names: dict[str, str] = {}
    for path, item in _objects(c, items, "nodes"):
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


def _outputs(c: _Checker, raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, OutputConfig]:
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
        fmt = c.value(values.choice, spec, "format", path, "lines", OUTPUT_FORMATS)
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
            sheet=c.value(_nonempty, spec, "sheet", path, None),
            sheet_by=c.value(_nonempty, spec, "sheet_by", path, None),
            summary=c.typed(spec, "summary", path, bool, False),
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


def _deliver(c: _Checker, raw: dict[str, Any], env: Mapping[str, str]) -> tuple[S3SinkConfig, ...]:
    """`deliver`: the input itself, uploaded to each S3 sink listed."""
    return _deliver_list(c, c.typed(raw, "deliver", "$", list, []), "deliver", env)


def _deliver_list(
    c: _Checker, items: Any, key: str, env: Mapping[str, str]
) -> tuple[S3SinkConfig, ...]:
    """The deliver list at `$.<key>` (the top-level one, or a source's own)."""
    if not isinstance(items, list):
        c.fail(f"$.{key}", f"expected a list, got {values.kind(items)}")
        return ()
    sinks = []
    for path, item in _objects(c, items, key):
        sink, errors = parse_sink(item, path, path.removeprefix("$."), env, only=("s3",))
        c.errors += errors
        if isinstance(sink, S3SinkConfig):
            sinks.append(sink)
    return tuple(sinks)
