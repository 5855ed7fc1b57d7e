"""config.pipeline_parser: the shape of pipeline_config.json, every problem located by JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from config.notify import EVENTS
from config.pipeline import (
    ERROR_POLICIES,
    LONG_LINES,
    OUTPUT_FORMATS,
    READER_TYPES,
    SIGNATURES,
    OutputConfig,
    PriorityRule,
    ReaderConfig,
    RouteConfig,
    TraceConfig,
    is_output_suffix,
)
from config.pipeline_parser import parse, read_json
from config.sinks import CHECKSUM_WHEN, SQL_TYPES
from config.sources import AFTER, WATCH
from config.testcases import MATCH_KINDS, STATUSES

CONFIG_FORMAT = Path(__file__).resolve().parents[2] / "docs" / "pipeline" / "config-format.md"


def problems(raw: Any) -> dict[str, str]:
    _, errors = parse(raw)
    return {e.key: e.message for e in errors}


def test_an_empty_config_is_valid_and_sends_everything_to_end() -> None:
    config, errors = parse({})
    assert errors == []
    assert config is not None
    assert [r.start for r in config.routes] == ["end"]
    assert config.outputs["end"].suffix == "out"
    assert config.max_hops == 64


def test_a_key_left_out_gets_the_default_its_dataclass_declares() -> None:
    config, errors = parse({"outputs": {"x": {}}, "priority": [{"glob": "*.x"}]})
    assert config is not None and [e.key for e in errors] == ["$.priority[0].priority"]
    assert (config.max_hops, config.max_expansion, config.description) == (64, 1000, "")
    assert config.trace == TraceConfig()
    assert config.outputs["x"] == OutputConfig("x", "x")
    assert config.priority == (PriorityRule(glob="*.x"),)
    assert config.routes[0] == RouteConfig(start="end")


@pytest.mark.parametrize(
    ("raw", "key", "words"),
    [
        ({"reader": {"type": "xml"}}, "$.reader.type", READER_TYPES),
        ({"reader": {"errors": "shrug"}}, "$.reader.errors", ERROR_POLICIES),
        ({"reader": {"long_lines": "chop"}}, "$.reader.long_lines", LONG_LINES),
        ({"routes": [{"start": "end", "signature": "pdf"}]}, "$.routes[0].signature", SIGNATURES),
        ({"outputs": {"x": {"format": "pdf"}}}, "$.outputs.x.format", OUTPUT_FORMATS),
        ({"sources": [{"name": "s", "path": "/srv", "after": "burn"}]}, "$.sources[0].after",
         AFTER),
        ({"sources": [{"name": "s", "path": "/srv", "watch": "fanotify"}]}, "$.sources[0].watch",
         WATCH),
        ({"deliver": [{"type": "s3", "bucket": "abc", "request_checksum_calculation": "always"}]},
         "$.deliver[0].request_checksum_calculation", CHECKSUM_WHEN),
        ({"outputs": {"rows": {"sink": {"type": "sql", "url": "sqlite:///x.db", "table": "t",
                                        "columns": {"a": "date"}}}}},
         "$.outputs.rows.sink.columns.a", SQL_TYPES),
        ({"notify": [{"url": "http://h/x", "events": ["nope"]}]}, "$.notify[0].events[0]",
         EVENTS),
        ({"tests": [{"name": "n", "file": "f", "lines": [], "expect": {"status": "ok"}}]},
         "$.tests[0].expect.status", STATUSES),
        ({"tests": [{"name": "n", "file": "f", "lines": [],
                     "expect": {"outputs": {"end": [{"glob": "x"}]}}}]},
         "$.tests[0].expect.outputs.end[0].glob", MATCH_KINDS),
    ],
)  # fmt: skip
def test_a_word_outside_a_closed_set_is_refused_naming_every_word_it_takes(
    raw: dict[str, Any], key: str, words: tuple[str, ...]
) -> None:
    _, errors = parse(raw)
    [error] = [e for e in errors if e.key == key]
    assert ", ".join(words) in str(error)


def test_unknown_keys_are_rejected_everywhere() -> None:
    found = problems(
        {
            "nodez": [],
            "routes": [{"start": "a", "glop": "*"}],
            "nodes": [{"tag": "a", "use": "pass", "option": {}}],
            "reader": {"encodin": "utf-8"},
            "limits": {"max_hop": 3},
        }
    )
    assert set(found) == {
        "$.nodez",
        "$.routes[0].glop",
        "$.nodes[0].option",
        "$.reader.encodin",
        "$.limits.max_hop",
    }
    assert all(m == "unknown key" for m in found.values())


def test_wrong_types_name_what_was_expected() -> None:
    found = problems(
        {
            "routes": {"start": "a"},
            "nodes": [
                {"tag": 3, "use": "pass"},
                {"tag": "b", "use": "pass", "options": []},
                {"tag": "c", "use": "pass", "to": ["end", "two words"]},
            ],
            "limits": {"max_hops": "10"},
            "trace": {"every": True},
        }
    )
    assert found["$.routes"] == "expected a list, got an object"
    assert found["$.nodes[0].tag"] == "expected a tag or a non-empty list of tags, got number 3"
    assert found["$.nodes[1].options"] == "expected an object, got a list"
    assert found["$.nodes[2].to[1]"].startswith("expected a tag name")
    assert found["$.limits.max_hops"] == "expected a whole number, got string '10'"
    assert found["$.trace.every"] == "expected a whole number, got boolean True"


def test_bad_values() -> None:
    found = problems(
        {
            "version": 2,
            "reader": {"encoding": "klingon", "errors": "shrug", "delimiter": ";"},
            "routes": [{"regex": "(unclosed", "start": "end"}, {"glob": "*"}],
            "nodes": [
                {"use": "pass"},
                {"name": "x", "tag": "a", "use": "pass"},
                {"name": "x", "tag": "b", "use": "pass"},
            ],
            "limits": {"max_hops": 0},
        }
    )
    assert "unsupported version" in found["$.version"]
    assert "unknown encoding" in found["$.reader.encoding"]
    assert "unknown error policy" in found["$.reader.errors"]
    assert "csv reader" in found["$.reader.delimiter"]
    assert "invalid regular expression" in found["$.routes[0].regex"]
    assert found["$.routes[1].start"] == "missing"
    assert found["$.nodes[0].tag"] == "missing"
    assert "duplicate node name 'x'" in found["$.nodes[2].name"]
    assert "from 1 to 10000" in found["$.limits.max_hops"]


@pytest.mark.parametrize("name", ["json", "a.b", "../x", "with space"])
def test_output_names_must_be_plain_and_never_json(name: str) -> None:
    found = problems({"outputs": {name: {}}})
    assert any(key.startswith("$.outputs") for key in found), found


def test_output_suffix_can_be_renamed_but_not_to_json() -> None:
    config, errors = parse({"outputs": {"errors": {"suffix": "err"}}})
    assert errors == [] and config is not None
    assert config.outputs["errors"].suffix == "err"
    assert "$.outputs.errors.suffix" in problems({"outputs": {"errors": {"suffix": "json"}}})
    assert "already used" in problems({"outputs": {"x": {"suffix": "out"}}})["$.outputs.x"]


def test_the_output_suffix_rule_the_worker_shares() -> None:
    assert all(map(is_output_suffix, ["out", "errors", "a-b_1", "JSON"]))
    assert not any(map(is_output_suffix, ["json", "", "a.b", "../x", "with space", "x\n"]))


def test_errors_read_as_one_line_with_a_hint() -> None:
    _, errors = parse({"reader": {"errors": "shrug"}})
    assert str(errors[0]) == (
        "$.reader.errors: unknown error policy 'shrug' (one of strict, "
        "replace, ignore, backslashreplace, surrogateescape)"
    )


def test_read_json_locates_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"nodes": [\n  {"tag": "a",}\n]}')
    with pytest.raises(ConfigError) as info:
        read_json(path)
    assert info.value.key == f"{path}:2:15"
    assert "not valid JSON" in info.value.message
    with pytest.raises(ConfigError) as info:
        read_json(tmp_path / "missing.json")
    assert "cannot read" in info.value.message
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError):
        read_json(path)


def test_the_manuals_config_example_is_valid_and_shows_the_reader_defaults() -> None:
    section = CONFIG_FORMAT.read_text(encoding="utf-8")
    example = section[section.index("```json\n") + 8 : section.index("```\n", 8)]
    config, errors = parse(json.loads(example))
    assert errors == [] and config is not None
    assert config.routes[0].reader == ReaderConfig()
