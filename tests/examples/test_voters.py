"""The voters recipe end to end: the generator's workbooks dropped into a real daemon
running examples/voters/pipeline_config.json against the stand-in API (its own process,
short-lived tokens, 429s now and then, 503s for some IDs); each result workbook, read back
with python-calamine, lists every person on the sheet of their category with the right
details, plus a summary sheet; the API saw tokens refreshed, 429s retried, and no more
than the rate limit allows."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import python_calamine as calamine

from examples.voters.generate import generate
from tests.conftest import ROOT, DaemonProcess, Queue, wait_until

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
SHEETS = {"Registered in ward": "in_ward", "Registered elsewhere": "elsewhere",
          "Not registered": "not_registered", "Lookup failed": "lookup_failed"}  # fmt: skip
SECRET = "s3cret-voters"
CONFIG = ROOT / "examples" / "voters" / "pipeline_config.json"


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Start the recipe's API on a roll, in its own process on a free port; its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(roll: Path) -> str:
        out = tmp_path / "api.log"
        with out.open("w") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "examples.voters.api", "--registry", str(roll),
                 "--port", "0", "--secret", SECRET, "--token-ttl", "1.5", "--p429", "0.05"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
        text = wait_until(lambda: "listening on" in out.read_text() and out.read_text(), 30, "API")
        return text.split("listening on ", 1)[1].split()[0]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(10)


def _sheets(path: Path) -> dict[str, list[list[Any]]]:
    book = calamine.CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_workbooks_sorted_by_category_with_a_summary(
    queue: Queue, start_daemon: Start, tmp_path: Path, start_api: Callable[[Path], str]
) -> None:
    samples = tmp_path / "samples"
    made = generate(samples, wards=3, rows=40, large_rows=300, seed=5)
    roll = tmp_path / "roll.json"
    roll.write_text(json.dumps(made["roll"]))
    base = start_api(roll)
    start_daemon("--config", str(CONFIG), "--workers", "2",
                 env={"VOTERS_API_SECRET": SECRET, "VOTERS_API_URL": base})  # fmt: skip
    for p in sorted(samples.iterdir()):
        queue.drop(p.name, p.read_bytes())
    n = len(made["files"])
    wait_until(lambda: len(queue.files("processed")) == n, 180, f"{n} workbooks processed")

    summaries = queue.summaries()
    for name, expected in made["files"].items():
        book = _sheets(queue.results / f"{name}.xlsx")
        found: Counter[str] = Counter()
        for sheet, category in SHEETS.items():
            header, *rows = book[sheet] or [[]]  # a category no one is in: an empty sheet
            if rows:
                assert header[:4] == ["id_number", "surname", "first_names", "date_of_birth"]
            found[category] = len(rows)
            for row in rows:
                rec = dict(zip(header, row, strict=False))
                if category in ("in_ward", "elsewhere"):
                    voter = made["roll"]["voters"][rec["id_number"]]
                    assert rec["registered_ward"] == voter["ward"], rec
                    assert rec["polling_station"] == voter["polling_station"]
                if category == "lookup_failed":
                    assert rec["reason"], rec
        assert found == Counter(expected), name
        agg = summaries[name]["aggregates"]["wards"]
        assert {c: agg[c] for c in SHEETS.values() if agg[c]} == dict(Counter(expected))
        summary = dict(book["Summary"][1:])  # (what, value) rows, from the aggregates
        for sheet, category in SHEETS.items():
            assert summary.get(f"rows in sheet {sheet}", 0) == found[category]

    stats = httpx.get(f"{base}/v1/stats").json()
    assert stats["tokens"] > 1 and stats["401"] > 0, stats  # tokens expired and were renewed
    assert stats["429"] > 0 and stats["503"] > 0, stats  # retried; failed after retries
    big = summaries["ward_1_central.xlsx"]
    requests = big["aggregates"]["registry"]["requests"]
    assert big["duration_s"] >= (requests - 1) / 50 * 0.9  # the rate limit held
