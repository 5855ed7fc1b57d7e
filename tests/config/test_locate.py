"""The line of a JSON path in a config's text (what the Preview's editor shows)."""

from __future__ import annotations

import json

from config.locate import line_of, lines
from config.pipeline_parser import parse

TEXT = """{
  "routes": [
    {"glob": "*.log",
     "start": "log"},
    {"start": "other"}
  ],
  "nodes": [],
  "outputs": {"end": {}, "a.b": {"x": [1, 2.5e3, true, null, "s\\"q"]}}
}
"""


def test_every_key_and_item_has_its_line() -> None:
    found = lines(TEXT)
    assert found["$"] == 1
    assert found["$.routes"] == 2
    assert found["$.routes[0]"] == 3 and found["$.routes[0].start"] == 4
    assert found["$.routes[1].start"] == 5
    assert found["$.nodes"] == 7
    assert found["$.outputs.a.b.x[4]"] == 8


def test_a_missing_path_points_at_its_nearest_parent() -> None:
    found = lines(TEXT)
    assert line_of(found, "$.routes[1].reader.type") == 5
    assert line_of(found, "$.routes[7]") == 2
    assert line_of(found, "$.limits.max_hops") == 1
    assert line_of(found, "pipeline_config.json") is None


def test_the_errors_of_a_real_config_are_located() -> None:
    raw = {"routes": [{"start": "log", "glob": 3}], "nodes": [], "outputs": {"end": {}}}
    text = json.dumps(raw, indent=2)
    _, errors = parse(json.loads(text))
    (error,) = errors
    assert error.key == "$.routes[0].glob"
    assert line_of(lines(text), error.key) == text.splitlines().index('      "glob": 3') + 1


def test_a_document_too_deep_to_walk_keeps_what_was_found() -> None:
    text = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    found = lines(text)
    assert found["$"] == 1 and found["$.a"] == 1
