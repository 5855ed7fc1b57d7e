"""End to end through the real daemon: a mixed folder takes the right routes.

`python main.py --drain` on a queue holding .log, .log.gz, .csv and .jsonl files (one in a
sub-folder, one broken), with a config routing each kind its own way.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.processors.pipeline_helpers import drain

CONFIG = {
    "routes": [
        {"regex": r"^(?P<host>[a-z0-9]+)_(?P<date>\d{8})\.log(\.gz)?$", "start": "log"},
        {"glob": "*.csv", "start": "csv", "reader": {"type": "csv"}},
        {"glob": "*.jsonl", "start": "json"},
    ],
    "nodes": [
        {
            "name": "parse",
            "tag": "log",
            "use": "parse_log",
            "to": "record",
            "options": {"unparsed": "unparsed", "tz": "UTC"},
        },
        {
            "name": "levels",
            "tag": "record",
            "use": "tag_level",
            "options": {"levels": {"ERROR": "errors"}},
        },
        {
            "name": "rows",
            "tag": "csv",
            "use": "csv_validate",
            "to": "valid",
            "options": {
                "invalid": "invalid",
                "columns": [{"name": "sku", "required": True}, {"name": "qty", "type": "int"}],
            },
        },
        {
            "name": "events",
            "tag": "json",
            "use": "json_validate",
            "to": "redact",
            "options": {"required": ["msg"], "emit": "line", "invalid": "invalid"},
        },
        {
            "name": "redact",
            "tag": "redact",
            "use": "examples.plugins.redact:Redact",
            "options": {"mask": "<email>"},
        },
    ],
    "outputs": {"errors": {}, "unparsed": {}, "valid": {}, "invalid": {}},
}

LOG = "2026-11-22 10:00:00 [INFO] API: up\n2026-11-22 10:00:01 [ERROR] DB: down\ngarbage\n"


@pytest.mark.integration
def test_a_mixed_folder_takes_the_right_routes(tmp_path: Path) -> None:
    watch, results = tmp_path / "watch", tmp_path / "results"
    inbox = watch / "unprocessed"
    (inbox / "east").mkdir(parents=True)
    (inbox / "web01_20261122.log").write_text(LOG)
    (inbox / "east" / "db02_20261121.log.gz").write_bytes(gzip.compress(LOG.encode()))
    (inbox / "stock.csv").write_text("sku,qty\nA1,3\n,4\nB2,many\n")
    (inbox / "events.jsonl").write_text('{"msg": "mail ada@example.com"}\n{"nomsg": 1}\n')
    (inbox / "broken_20261122.log").write_bytes(b"ok\n\xff\xfe bad bytes\n")
    drain(watch, results, CONFIG, tmp_path)

    def out(name: str) -> str:
        return (results / name).read_text()

    def summary(name: str) -> dict:
        return json.loads(out(f"{name}.json"))

    record_info = (
        '{"ts":"2026-11-22 10:00:00","time":"2026-11-22T10:00:00Z","level":"INFO",'
        '"component":"API","message":"up"}\n'
    )
    record_error = (
        '{"ts":"2026-11-22 10:00:01","time":"2026-11-22T10:00:01Z","level":"ERROR",'
        '"component":"DB","message":"down"}\n'
    )
    for name, host in (("web01_20261122.log", "web01"), ("east/db02_20261121.log.gz", "db02")):
        assert out(f"{name}.out") == record_info
        assert out(f"{name}.errors") == record_error
        assert out(f"{name}.unparsed") == "garbage\n"
        s = summary(name)
        assert s["status"] == "processed" and s["start_tag"] == "log"
        assert s["metadata"]["host"] == host
        assert s["outputs"] == {"out": 1, "errors": 1, "unparsed": 1}

    assert out("stock.csv.valid") == "sku,qty\nA1,3\n"
    invalid = [json.loads(line) for line in out("stock.csv.invalid").splitlines()]
    assert [(r["line"], r["reason"]) for r in invalid] == [
        (3, "column 'sku' is required"),
        (4, "column 'qty': 'many' is not a valid int"),
    ]
    assert summary("stock.csv")["start_tag"] == "csv"

    assert out("events.jsonl.out") == '{"msg": "mail <email>"}\n'
    assert json.loads(out("events.jsonl.invalid"))["reason"] == "missing key 'msg'"
    assert summary("events.jsonl")["aggregates"] == {"redact": {"emails": 1}}

    broken = summary("broken_20261122.log")
    assert broken["status"] == "failed"
    assert broken["error"]["type"] == "UnicodeDecodeError" and broken["error"]["line"] == 2
    assert (watch / "failed" / "broken_20261122.log").exists()
    assert not (results / "broken_20261122.log.out").exists()
    processed = sorted(
        p.relative_to(watch / "processed").as_posix()
        for p in (watch / "processed").rglob("*")
        if p.is_file()
    )
    assert processed == [
        "east/db02_20261121.log.gz",
        "events.jsonl",
        "stock.csv",
        "web01_20261122.log",
    ]
