"""Loading a config: processors, options and topology checked once, and `main.py
--check-config`."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from processors import LoadedPipeline, check_file, load_file, loader, nodes
from processors.loader import check, load
from tests.processors.pipeline_helpers import chain, node

ROOT = Path(__file__).resolve().parents[2]


def problems(raw: dict[str, Any]) -> dict[str, str]:
    _, errors = check(raw)
    return {e.key: e.message for e in errors}


def test_the_default_config_is_valid() -> None:
    errors, outline = check_file(ROOT / "pipeline_config.json")
    assert errors == []
    assert "[leveled] by_level (tag_level) -> errors, warnings, end" in outline


def test_unknown_processors_and_imports_are_located() -> None:
    found = problems(
        chain(
            node("a", "nope", to="b"),
            {"tag": "b", "use": "no_such_module:X", "to": "c"},
            {"tag": "c", "use": "processors.line_routers:Nothing", "to": "d"},
            {"tag": "d", "use": "processors.line_routers:LEVEL_WORD"},
        )
    )
    assert found["$.nodes[0].use"] == "unknown processor 'nope'"
    assert "cannot import 'no_such_module'" in found["$.nodes[1].use"]
    assert "has no attribute 'Nothing'" in found["$.nodes[2].use"]
    assert "neither a class nor a function" in found["$.nodes[3].use"]


def test_options_are_checked_with_their_json_path() -> None:
    found = problems(
        chain(
            node("a", "filter", to="b", include="(bad"),
            node(
                "b",
                "tag_regex",
                to="c",
                rules=[{"pattern": "ok", "tag": "c"}, {"pattern": "[", "tag": "c"}],
            ),
            node("c", "split", to="d", delimiter=""),
            node("d", "join", to="e", count=2, colour="red"),
            node("e", "csv_validate"),
        )
    )
    assert "invalid regular expression" in found["$.nodes[0].options.include"]
    assert "invalid regular expression" in found["$.nodes[1].options.rules[1].pattern"]
    assert "non-empty string" in found["$.nodes[2].options.delimiter"]
    assert found["$.nodes[3].options.colour"] == "unknown option for join"
    assert found["$.nodes[4].options.columns"] == "missing (required by csv_validate)"


def test_topology_problems() -> None:
    config = {
        "routes": [{"glob": "*.log", "start": "a"}, {"start": "missing_start"}],
        "nodes": [
            node("a", "pass", to=["b", "dangling"]),
            node("b", "pass", to="end"),
            node("b", "upper"),  # a second node on tag b
            node("island", "pass"),  # nothing reaches it
            node("errors", "pass"),  # a tag that is also an output
        ],
        "outputs": {"errors": {}, "unused": {}},
    }
    found = problems(config)
    assert "no node and is not an output" in found["$.routes[1].start"]
    assert "emits to tag 'dangling'" in found["$.nodes[0].to"]
    assert "already has a node" in found["$.nodes[2].tag"]
    assert "never reached" in found["$.nodes[3].tag"]
    assert "is an output" in found["$.nodes[4].tag"]
    assert "never written" in found["$.outputs.unused"]


def test_a_loop_without_a_way_out_is_rejected_one_with_an_exit_accepted() -> None:
    closed = chain(node("a", "pass", to="b"), node("b", "pass", to="a"))
    assert "has no way out" in problems(closed)["$.nodes[0].to"]
    open_loop = chain(
        node("a", "pass", to="b"),
        node("b", "tag_regex", to="a", rules=[{"pattern": "x", "tag": "end"}]),
    )
    assert problems(open_loop) == {}
    assert "loop: a -> b (stopped after 64 hops)" in load(open_loop).outline()


def test_load_raises_the_first_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load(chain(node("a", "nope")))
    assert info.value.key == "$.nodes[0].use"


def test_load_file_returns_the_checked_pipeline_with_its_raw_dict(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    raw = chain(node("a", "upper"), outputs={"up": {}})
    raw["nodes"][0]["to"] = "up"
    path.write_text(json.dumps(raw))
    loaded = load_file(path)
    assert isinstance(loaded, LoadedPipeline)
    assert loaded.raw == raw
    assert [s.name for s in loaded.specs] == ["upper@a"] and loaded.by_tag["a"].emits == ("up",)
    assert loaded.hops == {"a": 0, "up": 1}
    path.write_text(json.dumps(chain(node("a", "upper", to="nowhere"))))
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.key == "$.nodes[0].to"


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", "--check-config", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_main_check_config_prints_the_outline_and_exits_0() -> None:
    done = check_config(ROOT / "pipeline_config.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pipeline: 11 route(s), 7 node(s), 5 output(s)")
    assert "regex ^(?P<host>" in done.stdout


def test_main_check_config_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "nodes": [node("end2", "filter", include="("), node("x", "pass", to="y")],
                "outputs": {"json": {}},
                "colour": 1,
            }
        )
    )
    done = check_config(path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    for key in (
        "$.colour",
        "$.outputs.json",
        "$.nodes[0].options.include",
        "$.nodes[1].to",
        "$.nodes[1].tag",
    ):
        assert any(f": {key}: " in line for line in lines), (key, lines)


def test_options_and_the_configs_own_keys_share_one_rule_per_value() -> None:
    found = problems(
        {
            "routes": [{"regex": "(", "start": "a"}],
            "nodes": [
                node("a", "filter", to="b", include="("),
                node("b", "filter", include="x", ignore_case=3),
            ],
            "limits": {"max_hops": True},
        }
    )
    assert found["$.routes[0].regex"] == found["$.nodes[0].options.include"]
    assert found["$.nodes[1].options.ignore_case"] == "expected true or false, got number 3"
    assert found["$.limits.max_hops"] == "expected a whole number, got boolean True"


class Counted:
    """A plugin that counts its instances: the options probe at load, one per file run."""

    made = 0

    def __init__(self, prefix: str = "") -> None:
        type(self).made += 1
        self.prefix = prefix

    def process(self, tag: str, line: str) -> str:
        return self.prefix + line


def test_the_config_is_checked_once_and_built_without_a_second_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Counted.made = 0
    loaded = load(chain({"tag": "in", "use": f"{__name__}:Counted", "options": {"prefix": "> "}}))
    assert Counted.made == 1  # constructed once, to check its options

    def refuse(*_: object) -> None:
        raise AssertionError("checked again")

    monkeypatch.setattr(loader, "check", refuse)
    monkeypatch.setattr(nodes, "build_spec", refuse)
    pipeline = pickle.loads(pickle.dumps(loaded)).build()
    assert loaded.outline().startswith("pipeline: 1 route(s), 1 node(s)")
    assert Counted.made == 1
    out = io.StringIO()
    pipeline.run_file(io.BytesIO(b"a\n"), "f.log", lambda _s: out)
    assert out.getvalue() == "> a\n" and Counted.made == 2  # a fresh instance per file
