"""The dashboard's parts in-process: journal pages, the pipeline layout, auth helpers and
the aggregates (no daemon, no HTTP)."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from daemon.schema import SCHEMA
from dashboard import auth, graph, queries
from dashboard.queries import Cursor
from dashboard.sessions import LoginThrottle, Sessions, Throttled, client_key
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
    access = auth.Access("t0k")
    assert access.authorized(bearer, {}) and not auth.Access("other").authorized(bearer, {})
    assert access.sessions is not None
    assert access.authorized(Headers({}), {auth.COOKIE: access.sessions.issue()})
    assert not access.authorized(Headers({}), {auth.COOKIE: "t0k"})
    assert auth.Access(None).authorized(Headers({}), {})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_and_are_revoked() -> None:
    clock = Clock()
    sessions = Sessions("t0k", max_age_s=60, clock=clock)
    cookie = sessions.issue()
    assert sessions.valid(cookie)
    clock.now += 60
    assert sessions.valid(cookie)
    clock.now += 1
    assert not sessions.valid(cookie), "expired"
    cookie = sessions.issue()
    clock.now -= 60
    assert sessions.valid(cookie), "the clock stepped back a little"
    clock.now -= 1
    assert not sessions.valid(cookie), "issued in the future"
    cookie = sessions.issue()
    sessions.revoke()
    assert not sessions.valid(cookie), "revoked (logout)"
    cookie = sessions.issue()
    assert not Sessions("t0k", clock=clock).valid(cookie), "from before a restart"
    assert not Sessions("other", clock=clock).valid(cookie), "for another token"
    issued, _, mac = cookie.partition(".")
    tampered = mac[:-1] + ("1" if mac.endswith("0") else "0")  # never the real MAC
    for forged in ("", ".", "x", f"{int(issued) + 1}.{mac}", f"{issued}.{tampered}",
                   f"-1.{mac}", f"{'9' * 30}.{mac}", f"{issued}.{mac}.x", "١٢.x"):  # fmt: skip
        assert not sessions.valid(forged), forged


def test_wrong_tokens_back_off_exponentially_per_client() -> None:
    clock = Clock()
    throttle = LoginThrottle(base_s=1, max_s=300, clock=clock)
    waits = []
    for _ in range(20):  # each after the previous wait: every one counts
        throttle.check("10.0.0.1")
        waits.append(throttle.failed("10.0.0.1")[1])
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256] + [300] * 11
    throttle.failed("10.0.0.1")
    clock.now += 299
    with pytest.raises(Throttled) as exc:
        throttle.check("10.0.0.1")
    assert exc.value.retry_after == 1
    throttle.check("10.0.0.2")  # another client is not held up
    clock.now += 1 + 300  # quiet for max_s after the wait: forgotten
    throttle.check("10.0.0.1")
    assert throttle.failed("10.0.0.1") == (1, 1)
    throttle.forget("10.0.0.1")
    assert throttle.failed("10.0.0.1") == (1, 1)


def test_the_throttle_remembers_a_bounded_number_of_clients() -> None:
    throttle = LoginThrottle(max_clients=100, clock=Clock())
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    with pytest.raises(Throttled):
        throttle.check("10.0.3.231")  # the most recent ones are kept
    throttle.check("10.0.0.0")


def test_clients_are_counted_by_address_and_ipv6_by_64() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"


def test_stats_add_up_events(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry

    stats = Stats(CollectorRegistry())
    stats.apply([
        {"kind": "file_queued", "ts": 60.0, "path": "a"},
        {"kind": "file_unqueued", "ts": 61.0, "path": "a"},
        {"kind": "file_started", "ts": 61.0, "mono": 1.0, "path": "a", "uid": "1"},
        {"kind": "file_processed", "ts": 62.0, "mono": 2.0, "path": "a", "uid": "1",
         "duration_s": 0.5, "tags": {"log": 3},
         "processors": {"p": {"lines_in": 3, "lines_out": 2, "errors": 0, "seconds": 0.1}}},
        {"kind": "file_queued", "ts": 63.0, "path": "b"},
        {"kind": "file_failed", "ts": 64.0, "mono": 4.0, "path": "b", "uid": "2", "error": "x"},
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
