"""The pipeline as a picture: tags and processors laid out in columns for an inline SVG.

Tags (start tags, intermediate tags, outputs) and processors alternate: a tag feeds the
processor registered on it, a processor emits to tags. Each node sits in the column of its
distance from a start tag (the loaded pipeline's fewest hops, so loops do not stretch the
picture); the template draws boxes and edges from the coordinates computed here. The
layout is drawn from the daemon's `LoadedPipeline` as it is: nothing is checked or
imported again, and it is computed once per loaded pipeline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from processors import LoadedPipeline, file_routes

COL_W = 170
ROW_H = 64
BOX_W = 140
BOX_H = 44
PAD = 20


@dataclass
class Node:
    id: str
    kind: str  # "tag", "start", "output" or "processor"
    label: str
    sub: str = ""
    x: int = 0
    y: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[dict[str, int]]
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
    for tag in config.outputs:
        tag_node(tag)
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
            back = b.x <= a.x
            edges.append({
                "x1": a.x + BOX_W, "y1": a.y + BOX_H // 2,
                "x2": b.x, "y2": b.y + BOX_H // 2, "back": back,
            })  # fmt: skip
    width = PAD * 2 + (max(columns, default=0)) * COL_W + BOX_W
    height = PAD * 2 + (rows - 1) * ROW_H + BOX_H
    return Graph(
        list(nodes.values()),
        edges,
        width,
        height,
        loaded.outline(),
        [file_routes.describe(r) for r in config.routes],
    )
