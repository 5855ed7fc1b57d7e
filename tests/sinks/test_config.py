"""`outputs.<tag>.sink` and `deliver` in pipeline_config.json: checked with located errors,
`${VAR}` expanded at load, passwords redacted from the outline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.pipeline_parser import parse
from config.sinks import S3SinkConfig, SqlSinkConfig, redact_url
from processors.loader import check_file

BASE = {"routes": [{"start": "rows"}], "nodes": []}


def _errors(raw: dict[str, object], environ: dict[str, str] | None = None) -> list[str]:
    return [str(e) for e in parse({**BASE, **raw}, environ or {})[1]]


def test_sinks_parse_into_typed_configs_with_variables_expanded() -> None:
    raw = {
        "outputs": {
            "rows": {
                "sink": {
                    "type": "sql",
                    "url": "postgresql://u:${PW}@db/x",
                    "table": "records",
                    "columns": {"ts": "timestamp"},
                }
            }
        },
        "deliver": [
            {
                "type": "s3",
                "bucket": "raw-inputs",
                "prefix": "{host}/",
                "endpoint_url": "${S3}",
                "skip_existing": True,
            }
        ],
    }
    config, errors = parse({**BASE, **raw}, {"PW": "p@ss", "S3": "http://127.0.0.1:9"})
    assert errors == [] and config is not None
    assert config.outputs["rows"].sink == SqlSinkConfig(
        "postgresql://u:p@ss@db/x", "records", (("ts", "timestamp"),), name="outputs.rows"
    )
    assert config.deliver == (
        S3SinkConfig(
            "raw-inputs", "{host}/", "http://127.0.0.1:9", skip_existing=True, name="deliver[0]"
        ),
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"outputs": {"rows": {"sink": {"type": "ftp"}}}},
            "$.outputs.rows.sink.type: unknown sink type 'ftp' (one of sql, s3)",
        ),
        (
            {"outputs": {"rows": {"sink": {"type": "sql", "table": "t"}}}},
            "$.outputs.rows.sink.url: missing",
        ),
        (
            {"outputs": {"rows": {"sink": {"type": "sql", "url": "mysql://x", "table": "t"}}}},
            "$.outputs.rows.sink.url: unsupported database URL 'mysql://x'",
        ),
        (
            {
                "outputs": {
                    "rows": {
                        "sink": {
                            "type": "sql",
                            "url": "sqlite:///x",
                            "table": "t",
                            "columns": {"a": "date"},
                        }
                    }
                }
            },
            "$.outputs.rows.sink.columns.a: unknown column type string 'date'",
        ),
        (
            {
                "outputs": {
                    "rows": {
                        "sink": {
                            "type": "sql",
                            "url": "sqlite:///x",
                            "table": "t",
                            "columns": {"uid": "text"},
                        }
                    }
                }
            },
            "$.outputs.rows.sink.columns.uid: column 'uid' is folderd's",
        ),
        (
            {
                "outputs": {
                    "rows": {"sink": {"type": "sql", "url": "sqlite:///x", "table": "t;drop"}}
                }
            },
            "$.outputs.rows.sink.table: invalid table name",
        ),
        (
            {"deliver": [{"type": "sql", "url": "sqlite:///x", "table": "t"}]},
            "$.deliver[0].type: unknown sink type 'sql' (one of s3)",
        ),
        ({"deliver": [{"type": "s3", "bucket": "ab"}]}, "$.deliver[0].bucket: invalid bucket"),
        (
            {"deliver": [{"type": "s3", "bucket": "abc", "prefix": "{}/"}]},
            "$.deliver[0].prefix: invalid placeholder {}",
        ),
        (
            {"deliver": [{"type": "s3", "bucket": "abc", "colour": 1}]},
            "$.deliver[0].colour: unknown key",
        ),
        (
            {"deliver": [{"type": "s3", "bucket": "abc", "request_checksum_calculation": "x"}]},
            "$.deliver[0].request_checksum_calculation: expected one of when_supported",
        ),
        (
            {"outputs": {"rows": {"sink": {"type": "sql", "url": "${NOPE}", "table": "t"}}}},
            "$.outputs.rows.sink.url: environment variable NOPE is not set",
        ),
    ],
)
def test_problems_are_located(raw: dict[str, object], expected: str) -> None:
    errors = _errors(raw)
    assert any(e.startswith(expected) for e in errors), errors


def test_redaction() -> None:
    assert redact_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://h/db?user=u&password=secret") == (
        "postgresql://h/db?user=u&password=***"
    )
    assert redact_url("sqlite:////abs/db.sqlite3") == "sqlite:////abs/db.sqlite3"


def test_the_outline_shows_each_sink_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOLDERD_TEST_PW", "hunter2-pw")
    cfg = tmp_path / "p.json"
    cfg.write_text(
        json.dumps(
            {
                "routes": [{"start": "rows"}],
                "outputs": {
                    "rows": {
                        "sink": {
                            "type": "sql",
                            "table": "records",
                            "url": "postgresql://u:${FOLDERD_TEST_PW}@h/db",
                        }
                    }
                },
                "deliver": [{"type": "s3", "bucket": "raw-inputs", "prefix": "in/"}],
            }
        )
    )
    errors, outline = check_file(cfg)
    assert errors == []
    assert "rows -> sql postgresql://u:***@h/db table records (one JSON column)" in outline
    assert "s3 s3://raw-inputs/in/<file>" in outline
    assert "hunter2-pw" not in outline
