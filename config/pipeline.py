"""What `pipeline_config.json` means, as typed objects: routes, nodes, outputs, readers,
trace, priority rules, and the parts other modules of this package declare (sinks,
notify, markers, sources).

`config.pipeline_parser` builds a `PipelineConfig` from the JSON, with located errors;
the defaults written here are the ones a config that leaves a key out gets. A closed set of
words is a `Literal` type: mypy checks every comparison with it, and the parser accepts
exactly its words (`get_args`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from config.markers import MarkersConfig
from config.notify import NotifyTarget
from config.sinks import S3SinkConfig, SinkConfig
from config.sources import SourceConfig

ReaderType = Literal["text", "csv", "excel", "none"]  # none: no lines read (only hashed, delivered)
ErrorPolicy = Literal["strict", "replace", "ignore", "backslashreplace", "surrogateescape"]
LongLines = Literal["fail", "truncate", "skip"]  # what a line over reader.max_line_bytes does
Signature = Literal["excel"]  # what a route's `signature` may name (processors.file_routes)
OutputFormat = Literal["lines", "xlsx"]
READER_TYPES: tuple[ReaderType, ...] = get_args(ReaderType)
ERROR_POLICIES: tuple[ErrorPolicy, ...] = get_args(ErrorPolicy)
LONG_LINES: tuple[LongLines, ...] = get_args(LongLines)
SIGNATURES: tuple[Signature, ...] = get_args(Signature)
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
TOP_KEYS = ("version", "description", "reader", "routes", "nodes", "outputs", "deliver", "limits",
            "trace", "priority", "tests", "notify", "markers", "sources")  # fmt: skip
SUMMARY_SUFFIX = "json"  # the daemon writes a file's summary to <rel_path>.json
_OUTPUT_SUFFIX = re.compile(r"[A-Za-z0-9_-]+")


def is_output_suffix(suffix: str) -> bool:
    """The one rule for an output file's suffix (the config checks it, the worker relies
    on it): letters, digits, `_` and `-`, and never the summary's."""
    return _OUTPUT_SUFFIX.fullmatch(suffix) is not None and suffix != SUMMARY_SUFFIX


@dataclass(frozen=True)
class ReaderConfig:
    """How a file's bytes become lines (gzip is always detected by its magic bytes)."""

    type: ReaderType = "text"
    encoding: str = "utf-8"
    errors: ErrorPolicy = "strict"
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    max_line_bytes: int = 16 << 20  # a line's size in UTF-8, its "\n" not counted
    long_lines: LongLines = "fail"
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
    signature: Signature | None = None  # "excel": the file's first bytes are a workbook's
    reader: ReaderConfig = field(default_factory=ReaderConfig)


@dataclass(frozen=True)
class NodeConfig:
    name: str
    tags: tuple[str, ...]
    use: str
    to: tuple[str, ...]
    options: dict[str, Any]
    path: str  # "$.nodes[3]", for errors found later


@dataclass(frozen=True)
class OutputConfig:
    tag: str
    suffix: str
    sink: SinkConfig | None = None  # delivered there instead of results/<file>.<suffix>
    format: OutputFormat = "lines"  # xlsx outputs sharing a suffix share a book
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
