"""User plugins: the README's example loaded through a config, functions, errors."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError
from processors import load_pipeline
from tests.processors.pipeline_helpers import chain

REDACT = {
    "name": "redact",
    "tag": "log",
    "use": "examples.plugins.redact:Redact",
    "to": ["clean", "redacted"],
    "options": {"mask": "<email>"},
}


def test_the_example_plugin_from_the_docs(run: Any) -> None:
    config = chain(REDACT, outputs={"clean": {}, "redacted": {}})
    summary, out = run(config, "login ok\nmail ada@example.com and bob.x+1@mail.co.uk\n")
    assert out == {"clean": "login ok\n", "redacted": "mail <email> and <email>\n"}
    assert summary["aggregates"] == {"redact": {"emails": 2}}
    assert summary["processors"]["redact"]["lines_in"] == 2


def test_a_plain_function_is_adapted(run: Any) -> None:
    config = chain({"tag": "in", "use": "examples.plugins.redact:shout"})
    summary, out = run(config, "hi\n   \nthere\n")
    assert out == {"out": "HI\nTHERE\n"}
    assert summary["dropped"] == 1


def test_plugin_options_are_checked_against_its_signature() -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline(
            chain({**REDACT, "options": {"colour": "red"}}, outputs={"clean": {}, "redacted": {}})
        )
    assert info.value.key == "$.nodes[0].options.colour"
    assert "options: mask" in info.value.hint
    with pytest.raises(ConfigError) as info:
        load_pipeline(
            chain({"tag": "in", "use": "examples.plugins.redact:shout", "options": {"x": 1}})
        )
    assert info.value.key == "$.nodes[0].options"


class NeedsOption:
    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit

    def process(self, tag: str, line: str) -> str:
        return line[: self.limit]


def test_a_plugin_rejecting_its_options_fails_at_load() -> None:
    use = f"{__name__}:NeedsOption"
    with pytest.raises(ConfigError) as info:
        load_pipeline(chain({"tag": "in", "use": use}))
    assert info.value.key == "$.nodes[0].options.limit"
    with pytest.raises(ConfigError) as info:
        load_pipeline(chain({"tag": "in", "use": use, "options": {"limit": -1}}))
    assert info.value.key == "$.nodes[0].options"
    assert "limit must be >= 0" in info.value.message


def test_a_class_without_process_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline(chain({"tag": "in", "use": "config.errors:ConfigError"}))
    assert "has no process(tag, line) method" in info.value.message
