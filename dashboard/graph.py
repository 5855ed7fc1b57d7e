"""The pipeline as a picture: tags and processors laid out in columns for an inline SVG.

Tags (start tags, intermediate tags, outputs) and processors alternate: a tag feeds the
processor registered on it, a processor emits to tags. Each node sits in the column of its
distance from a start tag (breadth-first, so loops do not stretch the picture); the
template draws boxes and edges from the coordinates computed here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from processors import file_routes
from processors.checker import check, outline

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
    problems: list[str]
    routes: list[str]


def build(raw: dict[str, Any]) -> Graph:
    """The layout of a parsed pipeline_config.json (the daemon's active one)."""
    config, specs, errors = check(raw)
    if config is None:
        return Graph([], [], 0, 0, "", [str(e) for e in errors], [])
    nodes: dict[str, Node] = {}
    succ: dict[str, list[str]] = {}

    def tag_node(tag: str) -> str:
        nid = f"tag:{tag}"
        if nid not in nodes:
            kind = "output" if tag in config.outputs else "tag"
            nodes[nid] = Node(nid, kind, tag)
        return nid

    starts = []
    for route in config.routes:
        nid = tag_node(route.start)
        if nodes[nid].kind == "tag":
            nodes[nid].kind = "start"
        starts.append(nid)
    for spec in specs:
        pid = f"node:{spec.name}"
        nodes[pid] = Node(pid, "processor", spec.name, spec.use)
        for tag in spec.tags:
            succ.setdefault(tag_node(tag), []).append(pid)
        for tag in spec.emits:
            succ.setdefault(pid, []).append(tag_node(tag))
    for tag in config.outputs:
        tag_node(tag)
    depth = _depths(list(dict.fromkeys(starts)), succ)
    for nid in nodes:
        depth.setdefault(nid, 0)
    columns: dict[int, list[str]] = {}
    for nid in nodes:
        columns.setdefault(depth[nid], []).append(nid)
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
        outline(config, specs),
        [str(e) for e in errors],
        [file_routes.describe(r) for r in config.routes],
    )


def _depths(starts: list[str], succ: dict[str, list[str]]) -> dict[str, int]:
    depth = dict.fromkeys(starts, 0)
    todo = deque(starts)
    while todo:
        nid = todo.popleft()
        for nxt in succ.get(nid, []):
            if nxt not in depth:
                depth[nxt] = depth[nid] + 1
                todo.append(nxt)
    return depth
