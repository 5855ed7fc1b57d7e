"""Checking a whole pipeline config: shape, processors, and the topology of the tag graph.

`check()` collects every problem as a located `ConfigError`: what `config.pipeline` finds
(unknown keys, wrong types), what building each node finds (unknown built-ins, plugins
that do not import, bad options), and what the graph shows: a tag nobody consumes, a node
nothing reaches, an output nothing writes, two nodes on one tag, a loop with no way out.
The same check runs for `--check-config`, at start-up and on every reload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from config import ConfigError
from config.pipeline import PipelineConfig, parse, read_json
from processors import file_routes
from processors.engine import Pipeline
from processors.nodes import NodeSpec, build_spec

log = structlog.get_logger(__name__)


def check(raw: Any) -> tuple[PipelineConfig | None, list[NodeSpec], list[ConfigError]]:
    """Every problem in a parsed config (empty when it is runnable)."""
    config, errors = parse(raw)
    if config is None:
        return None, [], errors
    specs: list[NodeSpec] = []
    for node in config.nodes:
        try:
            specs.append(build_spec(node))
        except ConfigError as exc:
            errors.append(exc)
    explicit = set(raw.get("outputs", {})) if isinstance(raw.get("outputs"), dict) else set()
    errors.extend(_topology(config, specs, explicit))
    return config, specs, errors


def _topology(
    config: PipelineConfig, specs: list[NodeSpec], explicit: set[str]
) -> list[ConfigError]:
    errors: list[ConfigError] = []
    by_tag: dict[str, NodeSpec] = {}
    for spec in specs:
        for tag in spec.tags:
            if tag in by_tag:
                errors.append(
                    ConfigError(
                        f"{spec.path}.tag",
                        f"tag {tag!r} already has a "
                        f"node ({by_tag[tag].name!r} at {by_tag[tag].path})",
                        "one node per tag; fan in by emitting to one tag",
                    )
                )
            elif tag in config.outputs:
                errors.append(
                    ConfigError(
                        f"{spec.path}.tag",
                        f"tag {tag!r} is an output",
                        "an output is terminal: pick another tag",
                    )
                )
            else:
                by_tag[tag] = spec

    def consumed(tag: str) -> bool:
        return tag in by_tag or tag in config.outputs

    hint = 'add a node with that tag, or declare it under "outputs"'
    for i, route in enumerate(config.routes):
        if not consumed(route.start):
            errors.append(
                ConfigError(
                    f"$.routes[{i}].start",
                    f"start tag {route.start!r} has no node and is not an output",
                    hint,
                )
            )
    for spec in specs:
        for tag in spec.emits:
            if not consumed(tag):
                where = ".to" if tag in spec.to else ".options"
                errors.append(
                    ConfigError(
                        f"{spec.path}{where}",
                        f"{spec.name!r} emits to tag "
                        f"{tag!r}, which has no node and is not an output",
                        hint,
                    )
                )
    reached = _reachable([r.start for r in config.routes], by_tag)
    for spec in specs:
        if by_tag.get(spec.tags[0]) is spec and not any(t in reached for t in spec.tags):
            errors.append(
                ConfigError(
                    f"{spec.path}.tag",
                    f"node {spec.name!r} is never "
                    "reached: no route starts at its tag and no reached "
                    "node emits to it",
                )
            )
    for tag in sorted(explicit & set(config.outputs)):
        if tag not in reached:
            errors.append(
                ConfigError(
                    f"$.outputs.{tag}",
                    f"output {tag!r} is never written: no route or reached node emits to it",
                )
            )
    for loop in _loops(by_tag):
        if not _exits(loop, by_tag):
            first = by_tag[sorted(loop)[0]]
            errors.append(
                ConfigError(
                    f"{first.path}.to",
                    "loop through tags "
                    f"{' -> '.join(sorted(loop))} has no way out: every "
                    "line entering it would hit the hop limit",
                    "let some lines leave the loop for an output",
                )
            )
    return errors


def _exits(loop: set[str], by_tag: dict[str, NodeSpec]) -> bool:
    return any(t not in loop for tag in loop for t in by_tag[tag].emits)


def _reachable(starts: list[str], by_tag: dict[str, NodeSpec]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        tag = stack.pop()
        if tag in seen:
            continue
        seen.add(tag)
        spec = by_tag.get(tag)
        if spec is not None:
            stack.extend(spec.emits)
    return seen


def _loops(by_tag: dict[str, NodeSpec]) -> list[set[str]]:
    """Strongly connected groups of tags that lines can circle in (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[set[str]] = []

    def edges(tag: str) -> tuple[str, ...]:
        spec = by_tag.get(tag)
        return tuple(t for t in spec.emits if t in by_tag) if spec else ()

    def visit(tag: str) -> None:
        index[tag] = low[tag] = len(index)
        stack.append(tag)
        on_stack.add(tag)
        for nxt in edges(tag):
            if nxt not in index:
                visit(nxt)
                low[tag] = min(low[tag], low[nxt])
            elif nxt in on_stack:
                low[tag] = min(low[tag], index[nxt])
        if low[tag] == index[tag]:
            group: set[str] = set()
            while True:
                t = stack.pop()
                on_stack.discard(t)
                group.add(t)
                if t == tag:
                    break
            if len(group) > 1 or tag in edges(tag):
                loops.append(group)

    for tag in sorted(by_tag):
        if tag not in index:
            visit(tag)
    return loops


def outline(config: PipelineConfig, specs: list[NodeSpec]) -> str:
    """A short, human description of the graph (what --check-config prints when valid)."""
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
    lines += [f"  {o.tag} -> <file>.{o.suffix}" for o in config.outputs.values()]
    by_tag = {t: s for s in specs for t in s.tags}
    for loop in _loops(by_tag):
        lines.append(f"loop: {' -> '.join(sorted(loop))} (stopped after {config.max_hops} hops)")
    return "\n".join(lines)


def load_pipeline(raw: dict[str, Any], *, trace: bool = False) -> Pipeline:
    """Build a runnable pipeline from a parsed config; raise ConfigError (the first
    problem) if it is not valid."""
    config, specs, errors = check(raw)
    if errors or config is None:
        raise errors[0]
    log.debug(
        "pipeline_loaded",
        routes=len(config.routes),
        nodes=[s.name for s in specs],
        outputs=sorted(config.outputs),
        trace=trace,
    )
    return Pipeline(config, specs, trace)


def validate_file(path: Path) -> dict[str, Any]:
    """Read and fully check a config file; return the raw dict for `load_pipeline`."""
    raw = read_json(path)
    _, _, errors = check(raw)
    if errors:
        raise errors[0]
    return raw


def check_file(path: Path) -> tuple[list[ConfigError], str]:
    """Every problem in a config file (empty when valid) and an outline of its graph."""
    try:
        raw = read_json(path)
    except ConfigError as exc:
        return [exc], ""
    config, specs, errors = check(raw)
    return errors, outline(config, specs) if config is not None else ""
