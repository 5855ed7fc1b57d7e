"""Provenance through a real daemon: a summary names the config that produced it by its
path as shown (`formats.names`), even when that path is not UTF-8."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from config.canonical import digest
from formats.names import shown
from tests.conftest import Queue

pytestmark = pytest.mark.integration


def test_config_path_not_utf8(start_daemon: Any, queue: Queue, tmp_path: Path) -> None:
    folder = tmp_path / os.fsdecode(b"configs-\xff")  # a name no UTF-8 decoder accepts
    folder.mkdir()
    raw = {"version": 1, "description": "odd place", "routes": [{"start": "end"}]}
    config = folder / "p.json"
    config.write_text(json.dumps(raw))
    d = start_daemon("--config", str(config))
    queue.drop("a.log", "one\n")
    d.wait_event("file_processed", path="a.log")
    prov = queue.summaries()["a.log"]["provenance"]
    assert prov["config"] == {"path": shown(str(config.resolve())), "sha256": digest(raw),
                              "version": 1, "description": "odd place"}  # fmt: skip
    assert "\\xff" in prov["config"]["path"]
