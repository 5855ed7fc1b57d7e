"""The pipeline as a picture: tags and processors laid out in columns for an inline SVG.

Tags (start tags, intermediate tags, outputs) and processors alternate: a tag feeds the
processor registered on it, a processor emits to tags; an output delivered to a sink feeds
a sink node. Each node sits in the column of its distance from a start tag (the loaded
pipeline's fewest hops, so loops do not stretch the picture); the template draws boxes and
edges from the coordinates computed here. The layout is drawn from the daemon's
`LoadedPipeline` as it is: nothing is checked or imported again, and it is computed once
per loaded pipeline.

`live()` turns the hub's rates (`dashboard.rates`) into what the page shows on each node
and edge; the page renders it first, the SSE stream's `rates` messages update it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors import LoadedPipeline, file_routes

COL_W = 230  # BOX_W plus room for an edge's rate label between columns
ROW_H = 76
BOX_W = 150
BOX_H = 58
PAD = 20
LABEL_H = 13  # edge labels in one gap are at least this far apart
EDGE_W = (1.4, 6.0)  # stroke width of an idle edge, and of the busiest one


@dataclass
class Node:
    id: str
    kind: str  # "tag", "start", "output" or "processor"
    label: str
    sub: str = ""
    x: int = 0
    y: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rate_key(self) -> str:
        """The `dashboard.rates` key of the lines through this node."""
        if self.kind == "processor":
            return f"in:{self.label}"
        if self.kind == "sink":  # what its output's files held; the input's: the files
            name = self.id.removeprefix("sink:")
            return "done:input" if name.startswith("deliver[") else f"done:{name}"
        return f"tag:{self.label}"


@dataclass
class Edge:
    id: str  # "<source node id>><target node id>"
    key: str  # the `dashboard.rates` key of its lines
    x1: int
    y1: int
    x2: int
    y2: int
    back: bool
    lx: int = 0  # where its rate label goes
    ly: int = 0


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    outline: str
    routes: list[str]


@functools.lru_cache(maxsize=1)  # the daemon's active pipeline; a reload brings a new one
def build(loaded: LoadedPipeline) -> Graph:
    """The layout of a loaded pipeline (the daemon's active one)."""
    config, hops = loaded.config, loaded.hops
    nodes: dict[str, Node] = {}
    succ: dict[str, list[str]] = {}
    # a tag sits at twice its hops from a start (an unreached one, an unused `end`, at 0),
    # a processor one column past its nearest tag
    column: dict[str, int] = {}

    def tag_node(tag: str) -> str:
        nid = f"tag:{tag}"
        if nid not in nodes:
            kind = "output" if tag in config.outputs else "tag"
            nodes[nid] = Node(nid, kind, tag)
            column[nid] = 2 * hops.get(tag, 0)
        return nid

    for route in config.routes:
        nid = tag_node(route.start)
        if nodes[nid].kind == "tag":
            nodes[nid].kind = "start"
    for spec in loaded.specs:
        pid = f"node:{spec.name}"
        nodes[pid] = Node(pid, "processor", spec.name, spec.use)
        column[pid] = min((2 * hops[t] + 1 for t in spec.tags if t in hops), default=0)
        for tag in spec.tags:
            succ.setdefault(tag_node(tag), []).append(pid)
        for tag in spec.emits:
            succ.setdefault(pid, []).append(tag_node(tag))
    for tag, out in config.outputs.items():
        nid = tag_node(tag)
        if out.sink is not None:
            sid = f"sink:{tag}"
            nodes[sid] = Node(sid, "sink", out.sink.type, out.sink.describe())
            column[sid] = column[nid] + 1
            succ.setdefault(nid, []).append(sid)
    starts = dict.fromkeys(tag_node(r.start) for r in config.routes)
    for i, sink in enumerate(config.deliver):  # the input itself, as it was dropped
        sid = f"sink:deliver[{i}]"
        nodes[sid] = Node(sid, "sink", sink.type, sink.describe())
        column[sid] = 1
        for nid in starts:
            succ.setdefault(nid, []).append(sid)
    columns: dict[int, list[str]] = {}
    for nid in nodes:
        columns.setdefault(column[nid], []).append(nid)
    rows = max((len(c) for c in columns.values()), default=1)
    for col, ids in columns.items():
        offset = (rows - len(ids)) * ROW_H // 2
        for i, nid in enumerate(ids):
            nodes[nid].x = PAD + col * COL_W
            nodes[nid].y = PAD + offset + i * ROW_H
    edges = []
    for src, dsts in succ.items():
        a = nodes[src]
        for dst in dsts:
            b = nodes[dst]
            edges.append(Edge(f"{src}>{dst}", _edge_key(a, b), a.x + BOX_W, a.y + BOX_H // 2,
                              b.x, b.y + BOX_H // 2, back=b.x <= a.x))  # fmt: skip
    _place_labels(edges)
    width = PAD * 2 + (max(columns, default=0)) * COL_W + BOX_W
    height = max([PAD * 2 + (rows - 1) * ROW_H + BOX_H] + [e.ly + PAD for e in edges])
    return Graph(
        list(nodes.values()),
        edges,
        width,
        height,
        loaded.outline(),
        [file_routes.describe(r) for r in config.routes],
    )


def _edge_key(a: Node, b: Node) -> str:
    """Which count measures the lines on edge a → b: a tag feeds one node (its lines are
    the edge's), a sink takes its output's; a processor's edge is what it emitted to that
    tag (each node counts its lines out per tag)."""
    if a.kind != "processor":
        return b.rate_key if b.kind == "sink" else a.rate_key
    return f"edge:{a.label}>{b.label}"


def _place_labels(edges: list[Edge]) -> None:
    """Each label at its edge's midpoint, pushed down where it would sit on another's."""
    by_gap: dict[int, list[Edge]] = {}
    for e in edges:
        e.lx, e.ly = (e.x1 + e.x2) // 2, (e.y1 + e.y2) // 2 - 6  # just above the curve
        if e.back:
            e.ly += 45  # the curve bends below
        by_gap.setdefault(e.lx, []).append(e)
    for gap in by_gap.values():
        gap.sort(key=lambda e: e.ly)
        for prev, e in itertools.pairwise(gap):
            e.ly = max(e.ly, prev.ly + LABEL_H)


def per_second(rate: float) -> str:
    if rate >= 10_000:
        return f"{rate / 1000:.0f}k/s"
    if rate >= 1000:
        return f"{rate / 1000:.1f}k/s"
    return f"{rate:.0f}/s" if rate >= 10 else f"{rate:.1f}/s"


def live(g: Graph, rates: Mapping[str, float], errors: Mapping[str, int]) -> dict[str, Any]:
    """What each edge and node shows now: its rate label, an edge's width (by its share of
    the busiest edge's rate), a processor's busy share and failed files."""
    peak = max((rates.get(e.key, 0.0) for e in g.edges), default=0.0)
    lo, hi = EDGE_W
    edges = {}
    for e in g.edges:
        rate = rates.get(e.key, 0.0)
        width = lo + (hi - lo) * (rate / peak) ** 0.5 if peak else lo
        label = per_second(rate)
        edges[e.id] = {"rate": rate, "label": label, "width": round(width, 2)}
    nodes = {}
    for n in g.nodes:
        rate = rates.get(n.rate_key, 0.0)
        unit = {"processor": "lines in", "sink": "lines"}.get(n.kind, "lines")
        if n.rate_key == "done:input":
            unit = "files"
        text = f"{per_second(rate)} {unit}"
        entry: dict[str, Any] = {"rate": rate}
        if n.kind == "processor":
            busy = rates.get(f"busy:{n.label}", 0.0)
            failed = errors.get(n.label, 0)
            text += f" · busy {busy:.0%}" + (f" · {failed} failed" if failed else "")
            entry.update(busy=busy, errors=failed)
        entry["label"] = text
        nodes[n.id] = entry
    return {"edges": edges, "nodes": nodes}
