"""Golden tests: each built-in on a small input, against checked-in expected outputs.

Each `golden/<case>/` holds `config.json`, one input file (its name drives routing), and
`expected/`: one file per output suffix plus `summary.json` (the summary's counts and
aggregates). After an intended change, regenerate with TEST_UPDATE_GOLDEN=1 and review
the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
SUMMARY_KEYS = (
    "lines_in",
    "lines_out",
    "outputs",
    "tags",
    "dropped",
    "added",
    "unrouted",
    "aggregates",
)


@pytest.mark.parametrize("case", CASES)
def test_golden(run: Any, case: str) -> None:
    folder = GOLDEN / case
    config = json.loads((folder / "config.json").read_text())
    (source,) = [p for p in folder.iterdir() if p.is_file() and p.name != "config.json"]
    summary, outputs = run(config, source.read_bytes(), source.name)
    summary = {key: summary[key] for key in SUMMARY_KEYS}
    expected_dir = folder / "expected"
    if os.environ.get("TEST_UPDATE_GOLDEN"):
        expected_dir.mkdir(exist_ok=True)
        for old in expected_dir.iterdir():
            old.unlink()
        for suffix, text in outputs.items():
            (expected_dir / suffix).write_text(text)
        (expected_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    expected = {p.name: p.read_text() for p in expected_dir.iterdir()}
    assert json.loads(expected.pop("summary.json")) == summary
    assert outputs == expected


def test_every_builtin_has_a_golden_case() -> None:
    from processors.registry import BUILTINS

    used = set()
    for case in CASES:
        config = json.loads((GOLDEN / case / "config.json").read_text())
        used |= {n["use"] for n in config["nodes"]}
    assert set(BUILTINS) <= used, set(BUILTINS) - used
