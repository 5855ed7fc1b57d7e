"""User plugins: the manual's example loaded through a config, functions, errors."""

from __future__ import annotations

import io
import multiprocessing
import pickle
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from processors import LoadedPipeline
from processors.loader import load
from tests.processors.pipeline_helpers import chain

ROOT = Path(__file__).resolve().parents[2]

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


def test_the_manual_shows_the_example_plugin_as_it_is() -> None:
    """The code on "Writing a processor" is the file the test above runs, byte for byte
    (from its imports on: the module's docstring is left out of the page)."""
    page = (ROOT / "docs" / "pipeline" / "plugins.md").read_text(encoding="utf-8")
    shown = page.split("```python\n", 1)[1].split("```\n", 1)[0]
    code = (ROOT / "examples" / "plugins" / "redact.py").read_text(encoding="utf-8")
    assert shown == code[code.index("from __future__") :]


def test_a_plain_function_is_adapted(run: Any) -> None:
    config = chain({"tag": "in", "use": "examples.plugins.redact:shout"})
    summary, out = run(config, "hi\n   \nthere\n")
    assert out == {"out": "HI\nTHERE\n"}
    assert summary["dropped"] == 1


def test_plugin_options_are_checked_against_its_signature() -> None:
    with pytest.raises(ConfigError) as info:
        load(chain({**REDACT, "options": {"colour": "red"}}, outputs={"clean": {}, "redacted": {}}))
    assert info.value.key == "$.nodes[0].options.colour"
    assert "options: mask" in info.value.hint
    with pytest.raises(ConfigError) as info:
        load(chain({"tag": "in", "use": "examples.plugins.redact:shout", "options": {"x": 1}}))
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
        load(chain({"tag": "in", "use": use}))
    assert info.value.key == "$.nodes[0].options.limit"
    with pytest.raises(ConfigError) as info:
        load(chain({"tag": "in", "use": use, "options": {"limit": -1}}))
    assert info.value.key == "$.nodes[0].options"
    assert "limit must be >= 0" in info.value.message


def test_a_class_without_process_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load(chain({"tag": "in", "use": "config.errors:ConfigError"}))
    assert "has no process(tag, line) method" in info.value.message


def _run_sent_pipeline(conn: Connection) -> None:
    """In a spawned process, as a worker: receive a loaded pipeline, build it, run a file."""
    loaded: LoadedPipeline = conn.recv()
    imported_before_build = "examples.plugins.redact" in sys.modules
    outputs: dict[str, io.StringIO] = {}
    summary = loaded.build().run_file(
        io.BytesIO(b"ok\nto ada@example.com\n"),
        "in.log",
        lambda s: outputs.setdefault(s, io.StringIO()),
    )
    conn.send(
        (
            imported_before_build,
            summary["aggregates"],
            {s: f.getvalue() for s, f in outputs.items()},
        )
    )


def test_a_loaded_pipeline_with_a_plugin_goes_to_a_spawned_worker_by_reference() -> None:
    loaded = load(chain(REDACT, outputs={"clean": {}, "redacted": {}}))
    assert pickle.loads(pickle.dumps(loaded)).specs[0].options == {"mask": "<email>"}
    ctx = multiprocessing.get_context("spawn")  # as the daemon's pool starts its workers
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_run_sent_pipeline, args=(child,))
    proc.start()
    try:
        parent.send(loaded)
        assert parent.poll(60), "the spawned process did not answer"
        imported_before_build, aggregates, outputs = parent.recv()
    finally:
        proc.join(10)
    assert proc.exitcode == 0
    # the plugin travels as its `use` reference and is imported where the pipeline is built
    assert not imported_before_build
    assert aggregates == {"redact": {"emails": 1}}
    assert outputs == {"clean": "ok\n", "redacted": "to <email>\n"}
