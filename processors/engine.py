"""The engine: streams one file through the tag graph and returns its summary.

Lines move in batches (every line of one read chunk) rather than one at a time: a node
receives all the lines of a chunk that reached its tag, and whatever it emits moves on one
hop per round until every line has reached an output, been dropped, or gone unrouted. So
the engine's own cost is per batch, not per line, and memory stays at a few chunks. Each
value carries its source line number (its origin), so errors name the line and an output
that receives one chunk's lines along routes of different lengths still writes them in
input order. With tracing on, sampled lines travel alone, so their path is exact.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from config.pipeline import PipelineConfig, ReaderConfig
from config.sinks import SqlSinkConfig
from processors import csv_rows, excel, file_routes, readers, topology
from processors.base import Context, Line, ProcessorError
from processors.nodes import NodeSpec, Runner, start_runner
from processors.outputs import BookFile, LinesOutput, OpenOutput, Parts, SheetOutput, in_input_order

END_OF_FILE = 0  # origin of lines emitted by flush(): they come from no single input line
# The cyclic collector's youngest generation, in objects: a batch's records (dicts and
# their lists) all live until the batch is done, so at CPython's default of 700 the
# collector scanned them again and again — about a third of the CSV route's time. At
# 10,000 most of them are freed before it runs.
GC_YOUNG = 10_000


class Outbox:
    """Collects what the nodes of one round emit, per tag, for the next round."""

    __slots__ = ("emitted", "parts", "total")

    def __init__(self) -> None:
        self.parts: dict[str, Parts] = {}
        self.total = 0
        self.emitted: dict[str, int] | None = None  # the running node's lines out, by tag

    def put(self, tag: str, values: list[Line], origins: Sequence[int]) -> None:
        if values:
            self.total += len(values)
            emitted = self.emitted
            if emitted is not None:
                emitted[tag] = emitted.get(tag, 0) + len(values)
            parts = self.parts.get(tag)
            if parts is None:
                self.parts[tag] = [(values, origins)]
            else:
                parts.append((values, origins))


class Pipeline:
    """A runnable pipeline of a checked config (`LoadedPipeline.build` makes one);
    `run_file` may be called any number of times."""

    def __init__(
        self,
        config: PipelineConfig,
        specs: Sequence[NodeSpec],
        by_tag: Mapping[str, NodeSpec],
        trace: bool,
    ) -> None:
        self.config = config
        self.trace = trace
        self._specs, self._by_tag = specs, by_tag
        self._variants: dict[str, Pipeline] = {}
        if gc.get_threshold()[0] < GC_YOUNG:  # the process that runs a pipeline: see GC_YOUNG
            gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        factories = {spec.name: spec.factory() for spec in specs}
        # per start tag, the nodes its lines can reach, in the order lines reach them (and
        # flush in), each with what makes its processor for a file
        self._order: dict[str, list[tuple[NodeSpec, Callable[[], Any]]]] = {}
        for route in self.config.routes:
            tags = topology.reach([route.start], by_tag)
            reached = dict.fromkeys(by_tag[t] for t in tags if t in by_tag)
            self._order[route.start] = [(spec, factories[spec.name]) for spec in reached]
        # per start tag whose lines reach an output unchanged, the tags they pass
        copies = {r.start: _copy_chain(r.start, by_tag, config) for r in self.config.routes}
        self._copies = {start: chain for start, chain in copies.items() if chain is not None}
        # lines, errors and seconds per node over every file this object ran (dashboard)
        self.totals: dict[str, dict[str, float]] = {
            spec.name: {"files": 0, "lines_in": 0, "lines_out": 0, "errors": 0, "seconds": 0.0}
            for spec in specs
        }
        self._running: _FileRun | None = None
        self.route_index: int | None = None  # the route the last file took (None: none matched)

    @property
    def copy_routes(self) -> frozenset[str]:
        """The start tags whose lines reach an output unchanged: those are copied as
        blocks of text, not line by line (unless the reader or a trace needs lines)."""
        return frozenset(self._copies)

    def variant(self, source: str) -> Pipeline:
        """This pipeline as the source named `source` runs it: its own routes and
        `deliver` when it declares them (`config.sources`), else this one."""
        found = self._variants.get(source)
        if found is not None:
            return found
        own = next((s for s in self.config.sources if s.name == source), None)
        if own is None or (own.routes is None and own.deliver is None):
            found = self
        else:
            config = dataclasses.replace(
                self.config,
                routes=self.config.routes if own.routes is None else own.routes,
                deliver=self.config.deliver if own.deliver is None else own.deliver,
            )
            found = Pipeline(config, self._specs, self._by_tag, self.trace)
            found.totals = self.totals  # one set of node counts for the dashboard
        self._variants[source] = found
        return found

    def live(self) -> dict[str, Any] | None:
        """The running file's counts so far (lines per tag, each node's stats), or None.
        Called between batches (from the input reader), so the counts are consistent."""
        run = self._running
        if run is None:
            return None
        return {"tags": dict(run.tags), "processors": {r.spec.name: r.stats() for r in run.runners}}

    def run_file(self, stream: BinaryIO, rel_path: str, open_output: OpenOutput) -> dict[str, Any]:
        """Stream one file through the graph; raise ProcessorError if it can never succeed."""
        self.route_index = None
        source = readers.Source(stream)
        route, metadata = file_routes.select(self.config.routes, rel_path, source.head)
        self.route_index = next(i for i, r in enumerate(self.config.routes) if r is route)
        header = None
        copy: tuple[str, ...] | None = None
        reader: readers.TextLines | excel.WorkbookRows
        if route.reader.type == "excel":
            reader = excel.WorkbookRows(source, route.reader)
            batches: Iterator[readers.Batch] = iter(reader)
        else:
            copy = self._copies.get(route.start) if _copies_text(route.reader, self.trace) else None
            is_csv = route.reader.type == "csv"
            blocks = is_csv or copy is not None
            reader = readers.TextLines(source, route.reader, blocks=blocks, crlf=is_csv)
            batches = iter(() if route.reader.type == "none" else reader)
        if isinstance(reader, readers.TextLines) and route.reader.type == "csv":
            rows = csv_rows.CsvRows(reader, route.reader)
            header, batches = rows.header, iter(rows)
        run = self._running = _FileRun(self, rel_path, route.start, metadata, header, open_output)
        try:
            if copy is not None:
                for (block,), origins in batches:
                    run.copy(copy, block, origins)
            else:
                for values, origins in batches:
                    run.feed(values, origins)
            run.finish()
            for book in run.books.values():
                book.close(run.aggregates)
        except BaseException:
            for book in run.books.values():
                book.discard()
            raise
        finally:
            self._running = None
            self._add_totals(run)
        return run.summary(reader)

    def _add_totals(self, run: _FileRun) -> None:
        for runner in run.runners:
            totals = self.totals[runner.spec.name]
            totals["files"] += 1
            for key, value in runner.stats().items():
                if key != "to":  # per-tag counts: the summaries have them
                    totals[key] += value


class _FileRun:
    """The state of one file's run: fresh processors, counters, open outputs, trace."""

    def __init__(
        self,
        pipeline: Pipeline,
        rel_path: str,
        start: str,
        metadata: dict[str, str],
        header: list[str] | None,
        open_output: OpenOutput,
    ) -> None:
        config = pipeline.config
        self.start = start
        self.metadata = metadata
        self.max_hops = config.max_hops
        self.max_expansion = config.max_expansion
        self.aggregates: dict[str, Any] = {}
        self.runners: list[Runner] = []
        self.by_tag: dict[str, Runner] = {}
        for spec, factory in pipeline._order[start]:
            ctx = Context(spec.name, spec.to, rel_path, start, metadata, self.aggregates, header)
            runner = start_runner(spec, factory, ctx)
            self.runners.append(runner)
            for tag in spec.tags:
                self.by_tag[tag] = runner
        self.books: dict[str, BookFile] = {}  # xlsx outputs' workbooks, by suffix
        self.writers: dict[str, LinesOutput | SheetOutput] = {}
        for tag, out in config.outputs.items():
            if out.format != "xlsx":
                numbered = isinstance(out.sink, SqlSinkConfig)  # rows name their input line
                self.writers[tag] = LinesOutput(out.suffix, open_output, header, numbered)
                continue
            if out.suffix not in self.books:
                same = [o for o in config.outputs.values() if o.suffix == out.suffix]
                sheets = [o.sheet or o.tag for o in same if o.sheet_by is None]
                summary = any(o.summary for o in same)
                self.books[out.suffix] = BookFile(out.suffix, open_output, summary, sheets)
            book = self.books[out.suffix]
            self.writers[tag] = SheetOutput(book, out.sheet or tag, out.sheet_by, header)
        self.tags: dict[str, int] = {}
        self.lines_in = 0
        self.unrouted = 0
        self.unrouted_tags: dict[str, int] = {}
        trace = config.trace
        self.trace: list[dict[str, Any]] | None = [] if pipeline.trace else None
        self.trace_first, self.trace_every, self.trace_max = trace.first, trace.every, trace.max

    def feed(self, values: list[Line], origins: Sequence[int]) -> None:
        self.lines_in += len(values)
        if self.trace is None or len(self.trace) >= self.trace_max:
            self._route(self.start, values, origins)
            return
        first, every = self.trace_first, self.trace_every
        begin = 0
        for i, origin in enumerate(origins):
            if origin <= first or (every and origin % every == 0):
                if begin < i:
                    self._route(self.start, values[begin:i], origins[begin:i])
                self._traced(values[i], origin)
                begin = i + 1
        if begin < len(values):
            self._route(self.start, values[begin:], origins[begin:])

    def copy(self, chain: tuple[str, ...], block: str, origins: Sequence[int]) -> None:
        """The lines numbered `origins` in one text block along a copy route
        (`_copy_chain`): counted at each tag and node as `_route` counts them, written to
        the output as the block, never split into lines and joined again."""
        n = len(origins)
        self.lines_in += n
        tags = self.tags
        for tag, to in itertools.pairwise(chain):
            tags[tag] = tags.get(tag, 0) + n
            runner = self.by_tag[tag]
            runner.lines_in += n
            runner.lines_out += n
            runner.emitted[to] = runner.emitted.get(to, 0) + n
        out = chain[-1]
        tags[out] = tags.get(out, 0) + n
        sink = self.writers[out]
        assert isinstance(sink, LinesOutput)
        sink.write_block(block, origins)

    def _traced(self, value: Line, origin: int) -> None:
        path: list[str] = []
        self._route(self.start, [value], [origin], path)
        if self.trace is not None and len(self.trace) < self.trace_max:
            text = value if isinstance(value, str) else repr(value)
            self.trace.append({"line": origin, "path": path, "text": text[:200]})

    def finish(self) -> None:
        """End of file: flush every node, in the order lines reach them."""
        for runner in self.runners:
            out = Outbox()
            out.emitted = runner.emitted
            runner.flush(out)
            for tag, parts in out.parts.items():
                for values, origins in parts:  # END_OF_FILE, but for `flush_batch`'s own
                    self._route(tag, values, origins)

    def _route(
        self, tag: str, values: list[Line], origins: Sequence[int], path: list[str] | None = None
    ) -> None:
        """Move one batch through the graph, a round per hop, until nothing is in flight."""
        pending = {tag: [(values, origins)]}
        budget = self.max_expansion * max(len(values), 1)
        hops = 0
        moved = 0
        touched: list[LinesOutput | SheetOutput] = []
        while pending:
            if hops > self.max_hops:
                raise _hop_limit(self.max_hops, pending)
            out = Outbox()
            for tag, parts in pending.items():
                vals, origs = parts[0] if len(parts) == 1 else in_input_order(parts)
                n = len(vals)
                self.tags[tag] = self.tags.get(tag, 0) + n
                if path is not None:
                    path.append(tag)
                runner = self.by_tag.get(tag)
                if runner is not None:
                    out.emitted = runner.emitted
                    runner.run(tag, vals, origs, out)
                    continue
                sink = self.writers.get(tag)
                if sink is not None:
                    if not sink.parts:
                        touched.append(sink)
                    sink.add(vals, origs)
                    continue
                self.unrouted += n
                self.unrouted_tags[tag] = self.unrouted_tags.get(tag, 0) + n
            moved += out.total
            if moved > budget:
                raise ProcessorError(
                    f"fan-out limit: {moved} lines in flight from {len(values)} input "
                    f"line(s) (limits.max_expansion is {self.max_expansion}); tags "
                    f"involved: {', '.join(sorted(out.parts))}",
                    tag=next(iter(out.parts)),
                    line=_first_origin(out.parts),
                    error_type="FanOutLimit",
                )
            pending = out.parts
            hops += 1
        for sink in touched:
            sink.write()

    def summary(self, reader: readers.TextLines | excel.WorkbookRows) -> dict[str, Any]:
        outputs: dict[str, int] = {}
        for sink in self.writers.values():
            if sink.lines:  # xlsx outputs sharing a workbook: the rows of all its sheets
                outputs[sink.suffix] = outputs.get(sink.suffix, 0) + sink.lines
        processors = {r.spec.name: r.stats() for r in self.runners}
        net = sum(p["lines_in"] - p["lines_out"] for p in processors.values())
        dropped = sum(max(p["lines_in"] - p["lines_out"], 0) for p in processors.values())
        text = reader if isinstance(reader, readers.TextLines) else None
        data: dict[str, Any] = {
            "start_tag": self.start,
            "lines_in": self.lines_in,
            "lines_truncated": text.truncated if text else 0,
            "lines_skipped": text.skipped if text else 0,
            "lines_out": sum(outputs.values()),
            "tags": self.tags,
            "outputs": outputs,
            "dropped": dropped,
            "added": dropped - net,  # lines created by fan-out, joins' remainders, flushes
            "unrouted": self.unrouted,
            "unrouted_tags": self.unrouted_tags,
            "metadata": self.metadata,
            "aggregates": self.aggregates,
            "processors": processors,
        }
        if isinstance(reader, excel.WorkbookRows):
            data["sheets"] = reader.sheets  # records read from each sheet
        if self.trace is not None:
            data["trace"] = self.trace
        return data


def _copy_chain(
    start: str, by_tag: Mapping[str, NodeSpec], config: PipelineConfig
) -> tuple[str, ...] | None:
    """The tags from `start` to an output of lines (a file of results, or rows for a SQL
    sink) through `pass` nodes that each send to one tag, if the route is one: its lines
    reach that output unchanged, so the engine moves them as text blocks
    (`_FileRun.copy`) instead of lines. None for any other route."""
    chain = [start]
    while (spec := by_tag.get(chain[-1])) is not None:
        if spec.use != "pass" or len(spec.to) != 1 or spec.to[0] in chain:
            return None
        chain.append(spec.to[0])
    out = config.outputs.get(chain[-1])
    if out is None or out.format == "xlsx":
        return None  # unrouted lines, a workbook: the line by line path
    if len(chain) - 1 > config.max_hops:
        return None  # so it fails at the hop limit as that path does
    return tuple(chain)


def _copies_text(reader: ReaderConfig, trace: bool) -> bool:
    """Whether a copy route may move `reader`'s text as blocks: text lines kept whole
    (blocks cannot truncate or skip long ones), not traced line by line."""
    return reader.type == "text" and reader.long_lines == "fail" and not trace


def _first_origin(parts: dict[str, Parts]) -> int | None:
    for tag_parts in parts.values():
        for _, origins in tag_parts:
            if len(origins):
                return origins[0] or None
    return None


def _hop_limit(max_hops: int, pending: dict[str, Any]) -> ProcessorError:
    tags = sorted(pending)
    return ProcessorError(
        f"hop limit reached: lines still moving after {max_hops} hops, through tag(s) "
        f"{', '.join(tags)} — a loop in the graph never lets them out "
        "(raise limits.max_hops if the loop is meant to run longer)",
        tag=tags[0],
        line=_first_origin(pending),
        error_type="HopLimit",
    )
