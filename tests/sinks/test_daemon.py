"""Sinks through a real daemon: SIGKILL mid-COPY or mid-multipart-upload and a restart
leave each input's rows exactly once and each object once, with no unfinished upload; a
database stopped mid-burst holds the files (503 naming the sink) and nothing fails; a type
violation fails its file naming the line; passwords never show; an S3 endpoint that drips
its answers is unavailable at `timeout_s` (503 naming it, the file held) until it is good."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from formats.names import parsed, shown
from sinks.keys import encoded, name_of
from tests.conftest import DaemonProcess, Queue, assert_exactly_once, sha256_of, wait_until
from tests.hostile_servers import Hostile
from tests.sinks.servers import PG_PASSWORD, S3_SECRET, Database, Postgres, SeaweedS3

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
COLUMNS = {"n": "integer", "msg": "text"}


def _config(tmp_path: Path, outputs: dict[str, Any], deliver: list[Any] | None = None) -> str:
    """Every line of every file goes to the first output (no nodes)."""
    start = next(iter(outputs))
    raw = {"routes": [{"start": start}], "outputs": outputs, "deliver": deliver or []}
    path = tmp_path / "sinks.json"
    path.write_text(json.dumps(raw))
    return str(path)


def _pg_rows(tmp_path: Path) -> str:
    sink = {
        "type": "sql",
        "url": "postgresql://folderd:${PGPW}@127.0.0.1:${PGPORT}/${PGDB}",
        "table": "records",
        "columns": COLUMNS,
        "timeout_s": 3,
    }
    return _config(tmp_path, {"rows": {"sink": sink}})


def _records(name: str, n: int) -> str:
    return "".join(json.dumps({"n": i, "msg": f"{name} {i}"}) + "\n" for i in range(1, n + 1))


def _pg_env(pg: Database) -> dict[str, str]:
    return {"PGPW": PG_PASSWORD, "PGPORT": str(pg.port), "PGDB": pg.name}


def _rows_per_source(pg: Database) -> dict[str, tuple[int, int]]:
    """(rows, distinct uids) per input."""
    got = pg.query("SELECT source, count(*), count(DISTINCT uid) FROM records GROUP BY source")
    return {source: (n, uids) for source, n, uids in got}


def test_sigkill_mid_copy_then_restart_leaves_each_inputs_rows_exactly_once(
    queue: Queue, start_daemon: Start, postgres: Database, tmp_path: Path
) -> None:
    cfg = _pg_rows(tmp_path)
    sizes = {"big.log": 400_000, **{f"s{i}.log": 50 + i for i in range(6)}}
    d = start_daemon("--config", cfg, "--workers", "2", env=_pg_env(postgres))
    for name, n in sizes.items():
        queue.drop(name, _records(name, n))
    copying = (
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%'"
        " AND state = 'active' AND datname = current_database()"
    )
    wait_until(lambda: postgres.query(copying)[0][0] > 0, 60, "the big file's COPY in flight")
    d.kill()
    assert queue.files("underprocess"), "killed while a file was in flight"

    d2 = start_daemon("--config", cfg, "--workers", "2", env=_pg_env(postgres))
    wait_until(lambda: len(queue.files("processed")) == len(sizes), 120, "all processed")
    assert_exactly_once(queue, list(sizes))
    assert _rows_per_source(postgres) == {name: (n, 1) for name, n in sizes.items()}
    total = postgres.query("SELECT count(*), count(DISTINCT (source, line)) FROM records")
    assert total == [(sum(sizes.values()), sum(sizes.values()))]
    summary = queue.summaries()["big.log"]
    [delivery] = summary["deliveries"]
    assert delivery["rows"] == 400_000 and delivery["sink"] == "outputs.rows"
    assert not (queue.results / "big.log.rows").exists(), "a sink's output is no results file"
    event = d2.wait_event("sink_delivered", path="big.log")
    assert (event["sink"], event["type"], event["rows"]) == ("outputs.rows", "sql", 400_000)
    mine = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'folderd'"
        " AND datname = current_database()"
    )
    assert postgres.query(mine)[0][0] <= 2, "one connection per worker, reused across files"
    for log in (d.output(), d2.output()):
        assert PG_PASSWORD not in log


def test_sigkill_mid_multipart_upload_then_restart_leaves_one_object_and_no_upload(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3 = {
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.url,
        "request_checksum_calculation": "when_required",
    }
    cfg = _config(tmp_path, {"rows": {"sink": {**s3, "prefix": "out/"}}}, [{**s3, "prefix": "in/"}])
    line = "x" * 1023 + "\n"
    big = line * (48 << 10)  # 48 MiB: six parts, twice (the output and the input)
    d = start_daemon("--config", cfg, env=s3_server.env)
    queue.drop("big.log", big)
    queue.drop("small.log", "a\nb\n")
    wait_until(lambda: s3_server.unfinished(bucket), 60, "a multipart upload in flight")
    d.kill()

    d2 = start_daemon("--config", cfg, env=s3_server.env)
    wait_until(lambda: len(queue.files("processed")) == 2, 120, "both processed")
    assert_exactly_once(queue, ["big.log", "small.log"])
    objects = s3_server.objects(bucket)
    assert sorted(objects) == [
        "in/big.log",
        "in/small.log",
        "out/big.log.rows",
        "out/small.log.rows",
    ]
    sha = hashlib.sha256(big.encode()).hexdigest()
    for key in ("in/big.log", "out/big.log.rows"):
        assert objects[key]["ContentLength"] == len(big)
        assert objects[key]["Metadata"]["sha256"] == sha
        body = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha
    assert s3_server.unfinished(bucket) == [], "no unfinished multipart upload left behind"
    deliveries = queue.summaries()["big.log"]["deliveries"]
    assert [x["location"] for x in deliveries] == [
        f"s3://{bucket}/out/big.log.rows",
        f"s3://{bucket}/in/big.log",
    ]
    assert all(x["etag"].endswith("-6") and x["bytes"] == len(big) for x in deliveries)
    assert S3_SECRET not in d.output() + d2.output()


def _paused(http: httpx.Client) -> dict[str, Any] | None:
    r = http.get("/health")
    check = next(c for c in r.json()["checks"] if c["name"] == "paused")
    return None if check["ok"] else {"code": r.status_code, **check}


def _check(http: httpx.Client, name: str) -> dict[str, Any]:
    return next(c for c in http.get("/health").json()["checks"] if c["name"] == name)


def _sink_metrics(http: httpx.Client) -> dict[str, float]:
    """`/metrics`' folderd_sink_* samples: 'name{labels}' -> value (labels sorted)."""
    out = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("folderd_sink_"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_a_database_stopped_mid_burst_holds_the_files_and_nothing_fails(
    queue: Queue, start_daemon: Start, own_postgres: Postgres, tmp_path: Path
) -> None:
    postgres = own_postgres  # stopped and started: a cluster of its own
    d = start_daemon(
        "--config", _pg_rows(tmp_path), "--port", "0", env=_pg_env(postgres), dashboard=True
    )
    http = httpx.Client(base_url=d.wait_event("dashboard_started")["url"], timeout=10)
    first = [f"a{i}.log" for i in range(5)]
    for name in first:
        queue.drop(name, _records(name, 20))
    wait_until(lambda: len(queue.files("processed")) == 5, 60, "the first five processed")

    postgres.stop()
    later = [f"b{i}.log" for i in range(10)]
    for name in later:
        queue.drop(name, _records(name, 20))
    paused = wait_until(lambda: _paused(http), 60, "/health naming the sink")
    assert paused["code"] == 503
    assert "outputs.rows" in paused["detail"] and "postgresql://folderd:***@" in paused["detail"]
    assert d.events("queue_paused")[0]["cause"] == "sink_unavailable"
    assert queue.files("failed") == []
    sink = _check(http, "sink outputs.rows")
    assert not sink["ok"] and "failing" in sink["detail"] and "postgresql://folderd:***@" in sink[
        "detail"]  # fmt: skip
    metrics = _sink_metrics(http)
    assert metrics['folderd_sink_up{sink="outputs.rows",type="sql"}'] == 0
    assert metrics['folderd_sink_deliveries_total{sink="outputs.rows",type="sql"}'] == 5
    assert metrics['folderd_sink_rows_total{sink="outputs.rows",type="sql"}'] == 100
    key = 'folderd_sink_errors_total{kind="unavailable",sink="outputs.rows",type="sql"}'
    assert metrics[key] >= 1

    postgres.start()
    names = first + later
    wait_until(lambda: len(queue.files("processed")) == len(names), 120, "all processed")
    assert_exactly_once(queue, names)
    assert queue.files("failed") == []
    assert _rows_per_source(postgres) == {name: (20, 1) for name in names}
    assert all(s["attempts"] == 1 for s in queue.summaries().values()), "held, not charged"
    wait_until(lambda: http.get("/health").status_code == 200, 30, "healthy again")
    assert "last delivery" in _check(http, "sink outputs.rows")["detail"]
    metrics = _sink_metrics(http)
    assert metrics['folderd_sink_up{sink="outputs.rows",type="sql"}'] == 1
    assert metrics['folderd_sink_rows_total{sink="outputs.rows",type="sql"}'] == 20 * len(names)
    count = 'folderd_sink_delivery_seconds_count{sink="outputs.rows",type="sql"}'
    assert metrics[count] == len(names)
    pages = [http.get(p).text for p in ("/health", "/api/status", "/api/pipeline", "/", "/files")]
    pages.append(http.get("/metrics").text)
    uid = queue.summaries()["b0.log"]["uid"]
    pages.append(http.get(f"/api/files/{uid}").text)
    page = http.get(f"/files/{uid}").text
    assert "Deliveries" in page and "20 rows" in page and "records in sql postgresql://" in page
    pages.append(page)
    summaries = [p.read_text() for p in queue.results.rglob("*.json")]
    for text in [d.output(), *pages, *summaries]:
        assert PG_PASSWORD not in text
    http.close()


@pytest.mark.timeout(300)  # SeaweedFS takes about 15 s to start again after a kill
def test_an_s3_server_stopped_mid_burst_holds_the_files_and_nothing_fails(
    queue: Queue, start_daemon: Start, own_s3: SeaweedS3, tmp_path: Path
) -> None:
    bucket = own_s3.bucket("outage")
    s3 = {"type": "s3", "bucket": bucket, "endpoint_url": own_s3.url, "timeout_s": 2}
    d = start_daemon(
        "--config",
        _config(tmp_path, {"end": {}}, [s3]),
        "--port",
        "0",
        env=own_s3.env,
        dashboard=True,
    )
    http = httpx.Client(base_url=d.wait_event("dashboard_started")["url"], timeout=10)
    names = [f"a{i}.log" for i in range(3)]
    for name in names:
        queue.drop(name, f"{name}\n")
    wait_until(lambda: len(queue.files("processed")) == 3, 60, "the first three processed")

    own_s3.stop()
    names += [f"b{i}.log" for i in range(6)]
    for name in names[3:]:
        queue.drop(name, f"{name}\n")
    paused = wait_until(lambda: _paused(http), 60, "/health naming the sink")
    assert paused["code"] == 503 and f"deliver[0]: s3 s3://{bucket}/" in paused["detail"]
    assert queue.files("failed") == []

    own_s3.start()
    wait_until(lambda: len(queue.files("processed")) == len(names), 120, "all processed")
    assert_exactly_once(queue, names)
    assert sorted(own_s3.objects(bucket)) == sorted(names)
    assert all(s["attempts"] == 1 for s in queue.summaries().values()), "held, not charged"
    assert S3_SECRET not in d.output()
    http.close()


def test_skip_existing_skips_a_re_dropped_identical_input(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3 = {"type": "s3", "bucket": bucket, "endpoint_url": s3_server.url, "skip_existing": True}
    cfg = _config(tmp_path, {"end": {}}, [s3])
    start_daemon("--config", cfg, env=s3_server.env)
    queue.drop("mirror.log", "same bytes\n")
    wait_until(lambda: queue.files("processed") == ["mirror.log"], 60, "the first processed")
    queue.drop("mirror.log", "same bytes\n")
    wait_until(lambda: len(queue.files("processed")) == 2, 60, "the second processed")
    queue.drop("mirror.log", "new bytes\n")
    wait_until(lambda: len(queue.files("processed")) == 3, 60, "the third processed")
    by_name = sorted(queue.summaries().values(), key=lambda s: s["started_ts"])
    assert [s["deliveries"][0].get("already_delivered", False) for s in by_name] == [
        False,
        True,
        False,
    ]
    assert {s["deliveries"][0]["location"] for s in by_name} == {f"s3://{bucket}/mirror.log"}
    head = s3_server.objects(bucket)["mirror.log"]
    assert head["Metadata"]["sha256"] == sha256_of(queue.dir("processed") / by_name[2]["source"])


def test_a_type_violation_fails_the_file_naming_its_line_and_leaves_no_delivery(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    db = tmp_path / "rows.sqlite3"
    url = f"sqlite:///{db}"
    raw = {
        "routes": [{"start": "in"}],
        "nodes": [{"tag": "in", "use": "pass", "to": ["any", "typed"]}],
        "outputs": {  # the first table takes anything; the second checks its columns
            "any": {"sink": {"type": "sql", "url": url, "table": "raw_lines"}},
            "typed": {"sink": {"type": "sql", "url": url, "table": "records", "columns": COLUMNS}},
        },
        "deliver": [{"type": "s3", "bucket": bucket, "endpoint_url": s3_server.url}],
    }
    cfg = tmp_path / "typed.json"
    cfg.write_text(json.dumps(raw))
    start_daemon("--config", str(cfg), env=s3_server.env)
    queue.drop("good.log", _records("good", 3))
    queue.drop("bad.log", _records("bad", 2) + '{"n": "three", "msg": "x"}\n')
    wait_until(lambda: queue.files("failed") == ["bad.log"], 60, "bad.log failed")
    wait_until(lambda: queue.files("processed") == ["good.log"], 60, "good.log processed")
    error = queue.summaries()["bad.log"]["error"]
    assert error["type"] == "SinkTypeError" and error["line"] == 3 and error["column"] == "n"
    assert error["sink"] == "outputs.typed"
    assert "line 3: column 'n' is integer, got 'three'" in error["message"]
    con = sqlite3.connect(db)
    for table in ("raw_lines", "records"):
        got = con.execute(f"SELECT source, count(*) FROM {table} GROUP BY source").fetchall()
        assert got == [("good.log", 3)], f"{table}: the failed file's rows are gone"
    assert sorted(s3_server.objects(bucket)) == ["good.log"], "the failed input is not uploaded"


def test_each_row_names_the_input_line_it_came_from(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    db = tmp_path / "rows.sqlite3"
    sink = {"type": "sql", "url": f"sqlite:///{db}", "table": "records", "columns": COLUMNS}
    raw = {
        "routes": [{"start": "in"}],
        "nodes": [
            {"tag": "in", "use": "json_validate", "to": "rows", "options": {"invalid": "unparsed"}}
        ],
        "outputs": {
            "rows": {"sink": sink},
            "unparsed": {},
        },
    }
    cfg = tmp_path / "lines.json"
    cfg.write_text(json.dumps(raw))
    start_daemon("--config", str(cfg))
    lines = ['{"n": 1, "msg": "a"}', "not json", "", '{"n": 4, "msg": "d"}', "nor this",
             '{"n": 6, "msg": "f"}']  # fmt: skip
    queue.drop("mixed.log", "\n".join(lines) + "\n")
    wait_until(lambda: queue.files("processed") == ["mixed.log"], 60, "mixed.log processed")
    got = sqlite3.connect(db).execute("SELECT line, n FROM records ORDER BY line").fetchall()
    assert got == [(1, 1), (4, 4), (6, 6)], "the line column is the input's line number"
    unparsed = (queue.results / "mixed.log.unparsed").read_text().splitlines()
    assert [json.loads(u)["line"] for u in unparsed] == [2, 3, 5]


def test_rows_of_a_route_without_nodes_name_their_input_lines_across_chunks(
    queue: Queue, start_daemon: Start, tmp_path: Path
) -> None:
    """Such a route moves its lines as text blocks (a reader's chunk at a time), each
    numbered by its first line: the rows still name their own input lines, in a file of
    several chunks with CRLF line ends and no last "\\n", and so does a type violation."""
    db = tmp_path / "rows.sqlite3"
    sink = {"type": "sql", "url": f"sqlite:///{db}", "table": "records", "columns": COLUMNS}
    start_daemon("--config", _config(tmp_path, {"rows": {"sink": sink}}))
    n = 20_000  # about 800 KB: several 256 KiB chunks
    queue.drop("crlf.log", _records("crlf", n).replace("\n", "\r\n").removesuffix("\r\n"))
    bad = _records("bad", n).splitlines(keepends=True)
    bad[12_344] = '{"n": "twelve thousand", "msg": "x"}\n'  # line 12,345: in the 2nd chunk
    queue.drop("bad.log", "".join(bad))
    wait_until(lambda: queue.files("processed") == ["crlf.log"], 60, "crlf.log processed")
    wait_until(lambda: queue.files("failed") == ["bad.log"], 60, "bad.log failed")
    con = sqlite3.connect(db)
    got = con.execute("SELECT count(*), sum(line = n), max(line), max(msg) FROM records")
    assert got.fetchone() == (n, n, n, "crlf 9999"), "each row's line is its input line"
    assert con.execute("SELECT msg FROM records WHERE line = ?", (n,)).fetchone() == ("crlf 20000",)
    error = queue.summaries()["bad.log"]["error"]
    assert error["line"] == 12_345 and error["column"] == "n"


@pytest.mark.timeout(240)
@pytest.mark.serial
def test_a_dripping_s3_endpoint_holds_the_file_with_health_naming_it_until_a_good_one_is_back(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    """An endpoint that answers 200 with Content-Length 100000, then one byte a second: the
    attempt is cut at `timeout_s` (3 s), the sink is unavailable — the file held in
    underprocess/, not failed, claiming paused, /health 503 naming the sink — and when the
    endpoint is good again (here: the same port now forwarding to SeaweedFS) it goes on."""
    upstream = ("127.0.0.1", s3_server.ports["s3.port"])
    with Hostile("drip", interval=1.0, upstream=upstream) as endpoint:
        s3 = {"type": "s3", "bucket": bucket, "endpoint_url": endpoint.url, "timeout_s": 3}
        d = start_daemon("--config", _config(tmp_path, {"end": {}}, [s3]), "--port", "0",
                         env=s3_server.env, dashboard=True)  # fmt: skip
        http = httpx.Client(base_url=d.wait_event("dashboard_started")["url"], timeout=10)
        assert http.get("/health").status_code == 200
        queue.drop("a.log", "a\n")
        paused = wait_until(lambda: _paused(http), 60, "/health naming the dripping sink")
        reported = time.monotonic()
        asked = reported - endpoint.accepted_at[0]
        detail = paused["detail"]
        assert paused["code"] == 503 and f"deliver[0]: s3 s3://{bucket}/a.log at " in detail
        assert "no complete answer within 3 s (timeout_s)" in detail
        assert 3 <= asked < 8, f"/health said so {asked:.1f} s after the request began"
        sink = _check(http, "sink deliver[0]")
        assert not sink["ok"] and "within 3 s (timeout_s)" in sink["detail"]
        assert queue.files("underprocess") == ["a.log"] and queue.files("failed") == []
        wait_until(lambda: len(d.events("file_held")) >= 2, 60, "a second attempt, held too")
        assert queue.files("failed") == [], "held, never charged"

        endpoint.mode = "proxy"
        wait_until(lambda: queue.files("processed") == ["a.log"], 90, "a.log delivered")
    assert_exactly_once(queue, ["a.log"])
    summary = queue.summaries()["a.log"]
    assert summary["attempts"] == 1
    assert summary["deliveries"][0]["location"] == f"s3://{bucket}/a.log"
    assert s3_server.objects(bucket)["a.log"]["Metadata"]["uid"] == summary["uid"]
    wait_until(lambda: http.get("/health").status_code == 200, 30, "healthy again")
    print(f"time until /health reported the dripping sink: {asked:.2f} s after the request")
    http.close()


def test_any_name_reaches_the_sinks_as_its_own_row_source_and_object(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    """Names that are not UTF-8, and names S3 servers would merge (`back\\slash.log` and
    `back/slash.log` on SeaweedFS): each input its own row source (the shown name) and its
    own object (the encoded key), each read back to its name, nothing failed."""
    names = [os.fsdecode(b"bad\xff.log"), "back\\slash.log", "back/slash.log", "100%.log",
             os.fsdecode(b"sub\xe9/x .log")]  # fmt: skip
    db = tmp_path / "rows.sqlite3"
    rows = {"type": "sql", "url": f"sqlite:///{db}", "table": "lines"}
    mirror = {"type": "s3", "bucket": bucket, "endpoint_url": s3_server.url, "prefix": "mirror/"}
    start_daemon("--config", _config(tmp_path, {"rows": {"sink": rows}}, [mirror]),
                 env=s3_server.env)  # fmt: skip
    for name in names:
        queue.drop(name, f"{shown(name)}\n")
    wait_until(lambda: len(queue.files("processed")) == len(names), 60, "all processed")
    assert queue.files("failed") == []
    summaries = {parsed(s["source"]): s for s in queue.summaries().values()}
    assert sorted(summaries) == sorted(names)
    got = sqlite3.connect(db).execute("SELECT source, uid FROM lines").fetchall()
    assert sorted(got) == sorted((shown(n), summaries[n]["uid"]) for n in names)
    objects = s3_server.objects(bucket)
    assert sorted(objects) == sorted(f"mirror/{encoded(n)}" for n in names)
    for key, head in objects.items():
        name = name_of(key.removeprefix("mirror/"))
        assert head["Metadata"]["uid"] == summaries[name]["uid"], key
        [delivery] = [d for d in summaries[name]["deliveries"] if d["type"] == "s3"]
        assert delivery["location"] == f"s3://{bucket}/{key}"
