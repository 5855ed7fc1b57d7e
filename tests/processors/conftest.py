"""Helpers for running a pipeline in-process: a config dict in, the summary and every
output's text out."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

from processors.loader import load


class Outputs(dict[str, io.StringIO | io.BytesIO]):
    """The output streams one run opened, by suffix; fails a test that opens one twice.
    A binary output (a workbook) comes out as bytes."""

    def open(self, suffix: str, binary: bool = False) -> io.StringIO | io.BytesIO:
        assert suffix not in self, f"output {suffix!r} opened twice"
        self[suffix] = io.BytesIO() if binary else io.StringIO()
        return self[suffix]

    def text(self) -> dict[str, Any]:
        return {suffix: stream.getvalue() for suffix, stream in self.items()}


Run = Callable[..., tuple[dict[str, Any], dict[str, Any]]]


@pytest.fixture
def run() -> Run:
    """run(config, data, rel_path="in.log", trace=False) -> (summary, {suffix: text})."""

    def run(
        config: dict[str, Any], data: bytes | str, rel_path: str = "in.log", trace: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        pipeline = load(config).build(trace=trace)
        raw = data.encode() if isinstance(data, str) else data
        outputs = Outputs()
        summary = pipeline.run_file(io.BytesIO(raw), rel_path, outputs.open)
        return summary, outputs.text()

    return run
