"""The dashboard's parts in-process: journal pages, the pipeline layout, auth helpers and
the aggregates (no daemon, no HTTP)."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from daemon.journal import SCHEMA
from dashboard import auth, graph, queries
from dashboard.queries import Cursor
from dashboard.stats import Stats, percentile
from processors import loader, nodes
from processors.loader import load, load_file
from tests.conftest import ROOT


def _journal(n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO files (uid, rel, original, state, created, updated) VALUES (?,?,?,?,?,?)",
        [
            (
                f"u{i}",
                f"f{i}.log",
                f"f{i}.log",
                "failed" if i % 3 == 0 else "processed",
                1000.0 + i // 2,
                1000.0 + i // 2,
            )
            for i in range(n)
        ],
    )
    conn.row_factory = sqlite3.Row
    return conn


def test_keyset_pages_cover_everything_once_even_with_equal_timestamps() -> None:
    conn = _journal(101)
    seen, cursor = [], None
    while True:
        page = queries.list_files(conn, limit=7, before=Cursor.parse(cursor))
        seen += [f["rel"] for f in page["files"]]
        cursor = page["older"]
        if cursor is None:
            break
    assert seen == [f"f{i}.log" for i in range(100, -1, -1)]
    back = queries.list_files(conn, limit=7, after=Cursor.parse(page["newer"]))
    assert [f["rel"] for f in back["files"]] == [f"f{i}.log" for i in range(9, 2, -1)]


def test_state_filter_search_and_counts() -> None:
    conn = _journal(30)
    failed = queries.list_files(conn, state="failed", limit=100)["files"]
    assert {f["state"] for f in failed} == {"failed"} and len(failed) == 10
    assert [f["rel"] for f in queries.list_files(conn, q="f2")["files"]][-1] == "f2.log"
    assert queries.list_files(conn, q="%")["files"] == []  # LIKE wildcards are literal
    expected = {"processed": 20, "failed": 10}
    assert queries.state_counts(conn) == {
        "unprocessed": 0, "underprocess": 0, "missing": 0, **expected}  # fmt: skip
    conn.execute("UPDATE files SET state = 'missing' WHERE uid = 'u1'")
    gone = queries.list_files(conn, state="missing", limit=100)["files"]
    assert [f["uid"] for f in gone] == ["u1"], "files removed by hand can be listed too"
    assert queries.state_counts(conn)["missing"] == 1
    plan = " ".join(
        str(r[3]) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM files WHERE state = 'failed'"
            " ORDER BY updated DESC, id DESC LIMIT 5")
    )  # fmt: skip
    assert "files_state_updated" in plan and "TEMP B-TREE" not in plan


def test_pipeline_layout_of_the_default_config() -> None:
    g = graph.build(load_file(ROOT / "pipeline_config.json"))
    kinds = {n.label: n.kind for n in g.nodes}
    assert kinds["log"] == "start" and kinds["parse"] == "processor" and kinds["end"] == "output"
    x = {n.label: n.x for n in g.nodes}
    assert x["log"] < x["parse"] < x["record"] < x["counts"] < x["by_level"] < x["end"]
    assert g.outline.startswith("pipeline:")


def test_the_layout_is_drawn_from_the_loaded_pipeline_without_checking_or_importing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = load(
        {
            "routes": [{"start": "log"}],
            "nodes": [{"tag": "log", "use": "examples.plugins.redact:Redact", "to": "end"}],
        }
    )

    def refuse(*_: object) -> None:
        raise AssertionError("the dashboard checked or imported the config again")

    monkeypatch.setattr(loader, "check", refuse)
    monkeypatch.setattr(nodes, "resolve", refuse)
    monkeypatch.setattr(importlib, "import_module", refuse)
    g = graph.build(loaded)
    assert {n.label: n.sub for n in g.nodes if n.kind == "processor"} == {
        "examples.plugins.redact:Redact@log": "examples.plugins.redact:Redact"
    }
    assert graph.build(loaded) is g  # once per loaded pipeline


def test_auth_helpers() -> None:
    assert auth.safe_next("/files?state=failed") == "/files?state=failed"
    for bad in ("//evil.example", "https://evil.example", "/\\evil", None, ""):
        assert auth.safe_next(bad) == "/"
    same = Headers({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"})
    other = Headers({"host": "127.0.0.1:8000", "origin": "http://evil.example"})
    assert auth.same_origin(same) and not auth.same_origin(other)
    assert auth.same_origin(Headers({"host": "x"}))
    bearer = Headers({"authorization": "Bearer t0k"})
    assert auth.authorized(bearer, {}, "t0k") and not auth.authorized(bearer, {}, "other")
    assert auth.authorized(Headers({}), {auth.COOKIE: auth.session_value("t0k")}, "t0k")
    assert not auth.authorized(Headers({}), {auth.COOKIE: "t0k"}, "t0k")
    assert auth.authorized(Headers({}), {}, None)


def test_stats_add_up_events(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    stats = Stats(CollectorRegistry())
    stats.apply([
        {"kind": "file_queued", "ts": 60.0, "path": "a"},
        {"kind": "file_started", "ts": 61.0, "path": "a", "uid": "1"},
        {"kind": "file_processed", "ts": 62.0, "path": "a", "uid": "1", "duration_s": 0.5,
         "tags": {"log": 3}, "processors": {"p": {"lines_in": 3, "lines_out": 2, "errors": 0,
                                                  "seconds": 0.1}}},
        {"kind": "file_queued", "ts": 63.0, "path": "b"},
        {"kind": "file_failed", "ts": 64.0, "path": "b", "uid": "2", "error": "x"},
    ])  # fmt: skip
    assert dict(stats.tags) == {"log": 3}
    assert stats.nodes["p"]["lines_out"] == 2 and stats.nodes["p"]["files"] == 1
    assert list(stats.waiting) == []
    minute = [b for b in stats.throughput(now=100.0) if b["minute"] == 60]
    assert minute == [{"minute": 60, "processed": 1, "failed": 1}]
    # nearest rank, rounding half to even: index round(p/100 * (n-1))
    assert [percentile([1.0, 2.0, 3.0, 4.0], p) for p in (0, 50, 100)] == [1.0, 3.0, 4.0]
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([], 95) is None
