"""`markers` in a config: each problem located by its JSON path."""

from __future__ import annotations

from config.pipeline_parser import parse


def _errors(markers: object) -> str:
    return "\n".join(str(e) for e in parse({"routes": [{"start": "end"}], "markers": markers})[1])


def test_problems_located() -> None:
    assert _errors({"file": "{name}.done", "folder": "_SUCCESS", "late_s": 60}) == ""
    text = _errors({"file": "{name}/x", "folder": "a/b", "late_s": -1, "color": 1})
    for where in ("$.markers.file", "$.markers.folder", "$.markers.late_s", "$.markers.color"):
        assert where in text, (where, text)
    assert "exactly one {name} or {stem}" in _errors({"file": "{name}{stem}.x"})
    assert "has the shape of a file's marker" in _errors({"file": "{name}.ok", "folder": "x.ok"})
    assert _errors([]) == "$.markers: expected an object, got a list"
