"""config.reader_parser: the `reader` object, top-level or a route's, its defaults, what a
route inherits and what a reader type allows."""

from __future__ import annotations

from typing import Any

from config.pipeline_parser import parse


def problems(raw: Any) -> dict[str, str]:
    _, errors = parse(raw)
    return {e.key: e.message for e in errors}


def test_reader_limits_have_defaults_and_routes_inherit_or_override_them() -> None:
    config, errors = parse(
        {
            "reader": {"max_line_bytes": 1024, "long_lines": "skip"},
            "routes": [
                {"glob": "*.log", "start": "end"},
                {"start": "end", "reader": {"long_lines": "fail"}},
            ],
        }
    )
    assert errors == [] and config is not None
    log, other = (route.reader for route in config.routes)
    assert (log.max_line_bytes, log.long_lines) == (1024, "skip")
    assert (other.max_line_bytes, other.long_lines) == (1024, "fail")
    default = parse({})[0]
    assert default is not None
    reader = default.routes[0].reader
    assert (reader.max_line_bytes, reader.long_lines) == (16 << 20, "fail")


def test_bad_reader_limits_are_located() -> None:
    found = problems(
        {
            "reader": {"max_line_bytes": 0, "long_lines": "chop"},
            "routes": [{"start": "end", "reader": {"max_line_bytes": "1k"}}],
        }
    )
    assert found == {
        "$.reader.max_line_bytes": "expected a whole number from 1 to 1073741824, got 0",
        "$.reader.long_lines": "expected one of fail, truncate, skip, got 'chop'",
        "$.routes[0].reader.max_line_bytes": "expected a whole number, got string '1k'",
    }


def test_gzip_limits_have_defaults_and_a_route_may_lift_them() -> None:
    config, errors = parse(
        {
            "reader": {"max_decompressed_mb": 512},
            "routes": [
                {"glob": "*.gz", "start": "end", "reader": {"max_gzip_ratio": None}},
                {"glob": "big/*", "start": "end", "reader": {"max_decompressed_mb": None}},
            ],
        }
    )
    assert errors == [] and config is not None
    readers = [(r.reader.max_gzip_ratio, r.reader.max_decompressed_mb) for r in config.routes]
    assert readers == [(None, 512), (200, None)]


def test_bad_gzip_limits_are_located() -> None:
    found = problems(
        {
            "reader": {"max_gzip_ratio": "high"},
            "routes": [
                {"start": "end", "reader": {"max_gzip_ratio": 0, "max_decompressed_mb": 1.5}}
            ],
        }
    )
    assert found == {
        "$.reader.max_gzip_ratio": "expected a whole number or null (no limit), got string 'high'",
        "$.routes[0].reader.max_gzip_ratio": "expected a whole number from 1 to 10000, got 0",
        "$.routes[0].reader.max_decompressed_mb": (
            "expected a whole number or null (no limit), got number 1.5"
        ),
    }


def test_the_csv_reader_only_fails_long_lines() -> None:
    # a CSV record may span lines: truncating or skipping one would tear records apart
    found = problems(
        {
            "reader": {"long_lines": "truncate"},
            "routes": [
                {"glob": "*.csv", "start": "end", "reader": {"type": "csv"}},
                {"glob": "*.tsv", "start": "end", "reader": {"type": "csv", "long_lines": "skip"}},
                {"glob": "*.txt", "start": "end", "reader": {"type": "csv", "long_lines": "fail"}},
                {"start": "end"},
            ],
        }
    )
    assert found == {
        "$.routes[0].reader.type": "long_lines 'truncate' is not possible with the csv reader",
        "$.routes[1].reader.long_lines": "long_lines 'skip' is not possible with the csv reader",
    }
