"""The tag graph: which node consumes each tag, where lines can go from the routes' start
tags, where they can circle, and what is wrong with it.

One breadth-first walk (`reach`) answers all three questions asked of the graph: whether a
node or an output is ever reached (the loader's check), the order a file's nodes flush in
(the engine), and how far from a start each tag sits (the dashboard's columns).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from config import ConfigError
from config.pipeline import PipelineConfig
from processors.nodes import NodeSpec

_HINT = 'add a node with that tag, or declare it under "outputs"'


def consumers(
    config: PipelineConfig, specs: Sequence[NodeSpec]
) -> tuple[dict[str, NodeSpec], list[ConfigError]]:
    """The node that consumes each tag; a second node on a tag, or one on an output, is a
    problem (and not counted)."""
    by_tag: dict[str, NodeSpec] = {}
    errors: list[ConfigError] = []
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
    return by_tag, errors


def reach(starts: Iterable[str], by_tag: Mapping[str, NodeSpec]) -> dict[str, int]:
    """Every tag lines can get to from `starts`, with the fewest hops it takes; in the
    order lines first arrive (breadth first)."""
    hops: dict[str, int] = {}
    todo: deque[str] = deque()
    for tag in starts:
        if tag not in hops:
            hops[tag] = 0
            todo.append(tag)
    while todo:
        tag = todo.popleft()
        spec = by_tag.get(tag)
        if spec is None:
            continue
        for nxt in spec.emits:
            if nxt not in hops:
                hops[nxt] = hops[tag] + 1
                todo.append(nxt)
    return hops


def problems(
    config: PipelineConfig,
    specs: Sequence[NodeSpec],
    by_tag: dict[str, NodeSpec],
    reached: dict[str, int],
    explicit: set[str],
) -> list[ConfigError]:
    """What is wrong with a graph whose tags have one node each: tags nobody consumes, nodes
    and (`explicit`ly declared) outputs nothing reaches, loops with no way out."""
    errors: list[ConfigError] = []

    def consumed(tag: str) -> bool:
        return tag in by_tag or tag in config.outputs

    for i, route in enumerate(config.routes):
        if not consumed(route.start):
            errors.append(
                ConfigError(
                    f"$.routes[{i}].start",
                    f"start tag {route.start!r} has no node and is not an output",
                    _HINT,
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
                        _HINT,
                    )
                )
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
    for loop in loops(by_tag):
        if not any(t not in loop for tag in loop for t in by_tag[tag].emits):
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


def loops(by_tag: dict[str, NodeSpec]) -> list[set[str]]:
    """Strongly connected groups of tags that lines can circle in (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

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
                found.append(group)

    for tag in sorted(by_tag):
        if tag not in index:
            visit(tag)
    return found
