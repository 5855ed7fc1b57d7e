"""Every benchmark `python -m bench` runs can at least start: it imports and its options
parse (`--help`). The benchmarks themselves are measured by hand, not timed in tests."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHES = sorted(p.stem for p in (Path(__file__).parent.parent / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("name", BENCHES)
def test_each_benchmark_imports_and_parses_its_options(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(f"bench.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
