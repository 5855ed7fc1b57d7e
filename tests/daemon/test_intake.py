"""Claim order: settled files by priority (rules from the config), then by arrival."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from config import ConfigError
from config.pipeline import PriorityRule
from config.pipeline_parser import parse
from daemon.intake import Intake, priority_of
from daemon.watcher import ignore_matcher

RULES = (
    PriorityRule(priority=100, folder="urgent"),
    PriorityRule(regex=re.compile(r"^p(?P<priority>-?\d+)_")),
    PriorityRule(priority=5, glob="*.csv"),
)


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("urgent/a.log", 100),
        ("urgent/deep/x.csv", 100),  # the first matching rule wins
        ("p7_report.log", 7),
        ("p-3_late.log", -3),
        ("sub/data.csv", 5),
        ("a.log", 0),
        ("not-urgent/a.log", 0),
    ],
)
def test_the_first_matching_rule_gives_the_priority(rel: str, expected: int) -> None:
    assert priority_of(RULES, rel) == expected


def test_a_top_priority_file_settled_last_is_claimed_next_among_10000(tmp_path: Path) -> None:
    queued = tmp_path / "unprocessed"
    (queued / "urgent").mkdir(parents=True)
    for i in range(10_000):
        (queued / f"f{i:05d}.log").write_text("x\n")
    seen = []
    intake = Intake(str(queued), 0.5, ignore_matcher([]), lambda p, prio: seen.append(prio), RULES)
    intake.scan(str(queued))
    intake.settle_due(time.monotonic() + 60)
    (queued / "urgent" / "now.log").write_text("x\n")
    intake.scan(str(queued))
    intake.settle_due(time.monotonic() + 120)
    assert len(intake) == 10_001 and seen.count(100) == 1
    first = intake.pop()
    assert first is not None and first[0] == str(queued / "urgent" / "now.log")
    assert intake.pop()[0] == str(queued / "f00000.log"), "then by arrival"
    intake.remove(str(queued / "f00001.log"))  # cancelled while waiting
    assert intake.pop()[0] == str(queued / "f00002.log")


def test_priority_rules_are_checked_with_located_errors() -> None:
    raw = {"priority": [{"folder": "urgent"}, {"priority": 3}, {"regex": "(", "priority": 1}]}
    config, errors = parse(raw)
    keys = {e.key for e in errors if isinstance(e, ConfigError)}
    assert {"$.priority[0].priority", "$.priority[1]", "$.priority[2].regex"} <= keys
    config, errors = parse({"priority": [{"regex": "^p(?P<priority>\\d)_"}]})
    assert errors == [] and config is not None and config.priority[0].regex is not None
