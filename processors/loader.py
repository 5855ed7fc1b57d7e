"""Loading a pipeline config: checked once, into one `LoadedPipeline` everyone shares.

`load_file(path)` reads `pipeline_config.json` and checks all of it: its shape
(`config.pipeline_parser`), every node (built-in names, plugin imports, options: building each
`NodeSpec` is where plugins are imported) and the topology of the tag graph
(`processors.topology`), raising the first problem as a located `ConfigError`. What it
returns is all anyone needs afterwards, with no second check: the daemon's worker
processes get it pickled and `build()` their runnable `Pipeline` from it; the dashboard
draws it. `check_file(path)` lists every problem instead, and outlines the graph when
there is none (`--check-config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog

from config import ConfigError
from config.canonical import digest
from config.pipeline import OutputConfig, PipelineConfig
from config.pipeline_parser import parse, read_json
from processors import file_routes, topology
from processors.engine import Pipeline
from processors.nodes import NodeSpec, build_spec

log = structlog.get_logger(__name__)


@dataclass(frozen=True, eq=False)
class LoadedPipeline:
    """A checked pipeline config (never an invalid one). Plain data, so it pickles to
    worker processes; a plugin travels by its `use` reference and is imported where the
    pipeline is built. Compared (and hashed) by identity: a reload makes a new one."""

    raw: dict[str, Any]  # the parsed JSON, as the file had it
    config: PipelineConfig
    specs: tuple[NodeSpec, ...]
    by_tag: dict[str, NodeSpec]  # the node consuming each tag
    hops: dict[str, int]  # every tag reached from the routes, by its fewest hops

    @cached_property
    def sha256(self) -> str:
        """The config's identity: the sha256 of its canonical form (`config.canonical`)."""
        return digest(self.raw)

    def build(self, trace: bool = False) -> Pipeline:
        """The runnable pipeline (in a worker process: imports its plugins)."""
        log.debug(
            "pipeline_loaded",
            routes=len(self.config.routes),
            nodes=[s.name for s in self.specs],
            outputs=sorted(self.config.outputs),
            trace=trace,
        )
        return Pipeline(self.config, self.specs, self.by_tag, trace)

    def outline(self) -> str:
        """A short, human description of the graph (what --check-config prints)."""
        config, specs = self.config, self.specs
        lines = [
            f"pipeline: {len(config.routes)} route(s), {len(specs)} node(s), "
            f"{len(config.outputs)} output(s); hop limit {config.max_hops}"
        ]
        lines.append("routes (first match wins):")
        lines += [f"  {file_routes.describe(r)}" for r in config.routes]
        if specs:
            lines.append("nodes:")
            lines += [
                f"  [{', '.join(s.tags)}] {s.name} ({s.use}) -> {', '.join(s.emits) or '-'}"
                for s in specs
            ]
        lines.append("outputs:")
        lines += [f"  {o.tag} -> {_target(o)}" for o in config.outputs.values()]
        if config.deliver:
            lines.append("deliver (the input itself):")
            lines += [f"  {s.describe('<file>')}" for s in config.deliver]
        if config.sources:
            lines.append("sources (folders watched in place):")
            lines += [f"  {s.describe()}" for s in config.sources]
        for loop in topology.loops(self.by_tag):
            lines.append(
                f"loop: {' -> '.join(sorted(loop))} (stopped after {config.max_hops} hops)"
            )
        return "\n".join(lines)


def _target(output: OutputConfig) -> str:
    """Where an output goes: its file under results/, or its sink (passwords redacted)."""
    name = f"<file>.{output.suffix}"
    if output.format == "xlsx":
        sheets = (
            f"a sheet per {output.sheet_by}"
            if output.sheet_by
            else f"sheet {output.sheet or output.tag}"
        )
        return f"{name} ({sheets}{', with a summary sheet' if output.summary else ''})"
    return name if output.sink is None else output.sink.describe(name)


def check(raw: Any) -> tuple[LoadedPipeline | None, list[ConfigError]]:
    """Every problem in a parsed config, and the loaded pipeline when there is none."""
    config, errors = parse(raw)
    if config is None:
        return None, errors
    specs: list[NodeSpec] = []
    for node in config.nodes:
        try:
            specs.append(build_spec(node))
        except ConfigError as exc:
            errors.append(exc)
    by_tag, duplicates = topology.consumers(config, specs)
    own = [(i, j, r) for i, s in enumerate(config.sources) for j, r in enumerate(s.routes or ())]
    hops = topology.reach([r.start for r in config.routes] + [r.start for *_, r in own], by_tag)
    explicit = set(raw["outputs"]) if isinstance(raw.get("outputs"), dict) else set()
    errors += duplicates + topology.problems(config, specs, by_tag, hops, explicit)
    errors += [
        ConfigError(f"$.sources[{i}].routes[{j}].start",
                    f"start tag {r.start!r} has no node and is not an output")
        for i, j, r in own if r.start not in by_tag and r.start not in config.outputs
    ]  # fmt: skip
    if errors:
        return None, errors
    return LoadedPipeline(raw, config, tuple(specs), by_tag, hops), []


def load(raw: Any) -> LoadedPipeline:
    """Check a parsed config; raise ConfigError (the first problem) if it is not valid."""
    loaded, errors = check(raw)
    if loaded is None:
        raise errors[0]
    return loaded


def load_file(path: Path) -> LoadedPipeline:
    """Read and fully check a config file (start-up, reload); raise ConfigError (the
    first problem) if it is not valid."""
    return load(read_json(path))


def check_file(path: Path) -> tuple[list[ConfigError], str]:
    """Every problem in a config file (empty when valid), or the outline of its graph."""
    try:
        raw = read_json(path)
    except ConfigError as exc:
        return [exc], ""
    loaded, errors = check(raw)
    return errors, loaded.outline() if loaded is not None else ""
