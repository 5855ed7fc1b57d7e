"""The live pipeline graph: rates from the counts workers report while a file runs, a
layout that stays readable at 20 nodes, and the page updating over SSE in Chromium."""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard import graph
from dashboard.rates import Rates, flat
from processors.loader import load
from tests.conftest import Queue, wait_until, write_config
from tests.dashboard.conftest import Dashboard

TIMEOUT_MS = 30_000


def _counts(lines: int, seconds: float = 0.0) -> Counter[str]:
    return flat({"in": lines, "end": lines}, {"p": {"lines_in": lines, "lines_out": lines,
                                                    "errors": 0, "seconds": seconds}})  # fmt: skip


def test_progress_reports_move_the_rates_and_the_end_is_not_counted_twice() -> None:
    r = Rates(window_s=10)
    r.started("u1")
    r.progress("u1", 100.0, _counts(300, 1.0))
    r.progress("u1", 101.0, _counts(500, 2.0))  # cumulative: adds 200
    assert r.per_second(101.5)["tag:in"] == 50.0
    assert r.per_second(101.5)["busy:p"] == 0.2
    r.finished("u1", 102.0, _counts(600, 2.5), None)  # the last 100, once
    rates = r.per_second(102.0)
    assert rates["in:p"] == 60.0 and rates["out:p"] == 60.0
    assert rates["done:end"] == 60.0  # what a sink took: whole files, at their end
    assert "done:end" not in Rates().per_second(102.0)
    assert r.per_second(111.0)["tag:in"] == 10.0  # only second 102's 100 lines are left
    assert r.per_second(112.5) == {}  # the window moved past everything


def test_a_new_attempt_counts_from_zero_and_failures_are_charged_to_their_node() -> None:
    r = Rates(window_s=10)
    r.progress("u1", 100.0, _counts(400))
    r.finished("u1", 100.0, None, "p")  # failed at node p
    r.started("u1")  # requeued: its counts start again
    r.progress("u1", 101.0, _counts(100))
    assert r.per_second(101.0)["tag:in"] == 50.0
    assert r.errors == {"p": 1}


def _twenty_nodes() -> dict[str, Any]:
    """A fan-out into four 4-node branches that fan in again, and an output to a sink."""
    nodes = [{"name": "fan", "tag": "in", "use": "pass", "to": ["a0", "b0", "c0", "d0"]}]
    for branch in "abcd":
        for i in range(4):
            to = f"{branch}{i + 1}" if i < 3 else "merged"
            nodes.append({"name": f"{branch}_step{i}", "tag": f"{branch}{i}", "use": "strip",
                          "to": to})  # fmt: skip
    nodes += [
        {"name": "merge", "tag": "merged", "use": "pass", "to": "counted"},
        {"name": "count", "tag": "counted", "use": "count", "to": "rows"},
        {"name": "keep", "tag": "rows", "use": "pass", "to": ["end", "db"]},
    ]
    return {
        "routes": [{"start": "in"}],
        "nodes": nodes,
        "outputs": {
            "end": {},
            "db": {"sink": {"type": "sql", "url": "sqlite:///x.db", "table": "rows"}},
        },
        "deliver": [{"type": "s3", "bucket": "mirror-bucket"}],
    }


def test_a_twenty_node_layout_keeps_boxes_and_rate_labels_apart() -> None:
    g = graph.build(load(_twenty_nodes()))
    processors = [n for n in g.nodes if n.kind == "processor"]
    assert len(processors) == 20
    boxes = [(n.x, n.y, n.x + graph.BOX_W, n.y + graph.BOX_H) for n in g.nodes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    for e in g.edges:  # a label sits in the gap between columns, inside the picture
        assert not any(x0 < e.lx < x1 and y0 < e.ly < y1 for x0, y0, x1, y1 in boxes), e
        assert 0 < e.ly < g.height and 0 < e.lx < g.width
    by_gap: dict[int, list[int]] = {}
    for e in g.edges:
        by_gap.setdefault(e.lx, []).append(e.ly)
    for ys in by_gap.values():
        ys.sort()
        assert all(b - a >= graph.LABEL_H for a, b in itertools.pairwise(ys))
    kinds = {n.id: n.kind for n in g.nodes}
    assert kinds["sink:db"] == "sink"
    keys = {e.id: e.key for e in g.edges}
    assert keys["tag:in>node:fan"] == "tag:in"
    assert keys["node:fan>tag:a0"] == "edge:fan>a0"  # what fan emitted to a0, exactly
    assert keys["node:a_step3>tag:merged"] == "edge:a_step3>merged"
    assert keys["tag:db>sink:db"] == "done:db"
    assert keys["tag:in>sink:deliver[0]"] == "done:input"  # the input itself, by the file


def test_live_labels_widths_and_failures() -> None:
    g = graph.build(load(_twenty_nodes()))
    rates = {"tag:in": 1500.0, "in:fan": 1500.0, "edge:fan>a0": 15.0, "busy:fan": 0.25}
    live = graph.live(g, rates, {"count": 2})
    assert live["edges"]["tag:in>node:fan"] == {"rate": 1500.0, "label": "1.5k/s",
                                                "width": graph.EDGE_W[1]}  # fmt: skip
    assert live["edges"]["node:fan>tag:a0"]["label"] == "15/s"
    assert live["edges"]["tag:b0>node:b_step0"] == {"rate": 0.0, "label": "0.0/s",
                                                    "width": graph.EDGE_W[0]}  # fmt: skip
    assert live["nodes"]["node:fan"]["label"] == "1.5k/s lines in · busy 25%"
    assert live["nodes"]["node:count"]["label"] == "0.0/s lines in · busy 0% · 2 failed"
    assert graph.live(g, {"done:input": 3.0}, {})["nodes"]["sink:deliver[0]"]["label"] == (
        "3.0/s files"
    )


@pytest.mark.integration
def test_a_burst_of_small_files_shows_in_the_rates_over_http_and_sse(
    dashboard: Dashboard, queue: Queue
) -> None:
    """Files done in under half a second send no progress: they count at their end, and
    the `rates` message on /events carries them."""
    rates: dict[str, Any] = {}
    with httpx.stream("GET", dashboard.url + "/events", timeout=30) as r:
        for i in range(40):
            queue.drop(f"burst{i}_20240105.log", LINE[:80] + "\n")
        for line in r.iter_lines():
            if line.startswith("data: "):
                msg = json.loads(line[6:])
                if msg["kind"] == "rates" and msg["edges"]["tag:log>node:parse"]["rate"]:
                    rates = msg
                    break
    assert re.fullmatch(r"[\d.]+k?/s lines in · busy \d+%", rates["nodes"]["node:parse"]["label"])
    assert rates["edges"]["tag:log>node:parse"]["width"] > graph.EDGE_W[0]
    page = dashboard.get("/api/pipeline").json()  # the page's first render has the same
    assert page["window_s"] == 10
    assert page["live"]["edges"]["tag:log>node:parse"]["rate"] > 0


# -- in the browser --------------------------------------------------------------------
LINE = "2024-01-05 10:00:01 [INFO] API: " + "x" * 4000 + "\n"  # ~256 lines per 1 MB read


@pytest.mark.browser
@pytest.mark.integration
def test_rates_appear_and_change_while_a_big_file_runs(
    start_dashboard: Any, page: Any, queue: Queue, tmp_path: Path
) -> None:
    """A 2,000-line file through a 10 ms-a-line node runs for ~20 s, read 1 MB (~2.6 s of
    work) at a time: the graph's rates must move during it, over SSE, without a reload."""
    from playwright.sync_api import expect

    nodes = [
        {"name": "slow", "tag": "in", "use": "tests.daemon.slow_plugin:slow", "to": "raw"},
        {"name": "parse", "tag": "raw", "use": "parse_log", "to": "record",
         "options": {"unparsed": "unparsed"}},
        {"name": "by_level", "tag": "record", "use": "tag_level",
         "options": {"levels": {"ERROR": "errors"}, "default": "end"}},
    ]  # fmt: skip
    config = write_config(tmp_path / "pipeline.json", nodes, ["end", "errors", "unparsed"])
    dash: Dashboard = start_dashboard("--config", str(config), "--workers", "1")
    page.goto(dash.url + "/pipeline")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.evaluate("window.__noReload = true")
    edge = page.locator('[data-edge-label="tag:in>node:slow"]')
    expect(edge).to_have_text("0.0/s")
    queue.drop("big.log", LINE * 2000)
    wait_until(lambda: dash.get("/api/status").json()["in_flight"], 30, "big.log in flight")

    def rate() -> float:
        text = edge.text_content() or ""
        m = re.fullmatch(r"([\d.]+)(k?)/s", text)
        assert m, text
        return float(m[1]) * (1000 if m[2] else 1)

    first = wait_until(lambda: rate() or None, 30, "a rate on the first edge")
    assert queue.files("underprocess") == ["big.log"]  # mid-file, not at its end
    second = wait_until(lambda: rate() if rate() != first else None, 30, "the rate changing")
    assert queue.files("underprocess") == ["big.log"]
    assert first != second
    node = page.locator('[data-node-label="node:slow"]')
    expect(node).to_contain_text(re.compile(r"lines in · busy [1-9]\d*%"))
    expect(page.locator('path[data-edge="tag:in>node:slow"]')).to_have_class(re.compile("flow"))
    out = Path(os.environ.get("TEST_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "pipeline_live.png"), full_page=True)
    assert page.evaluate("window.__noReload") is True
    wait_until(lambda: queue.files("processed") == ["big.log"], 60, "big.log processed")
    expect(edge).to_have_text("0.0/s", timeout=TIMEOUT_MS)  # the window empties again
