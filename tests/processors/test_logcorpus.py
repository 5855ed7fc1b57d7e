"""parse_log against a corpus of real logs, one file per format (tests/processors/logcorpus/,
each file's source in its SOURCES.md), each with its expected records: the format auto
detection picks, and per record its first line, level, component and message.

The report (printed; `pytest -s` shows it) gives per file the share of lines parsed (in a
record, the record's own line or one joined to it), of levels right (after normalising),
of components right and of messages exactly the text after the header; the test fails
under the bars: 95 % of lines parsed, 95 % of levels right, 90 % of messages exact.

After an intended change, LOGCORPUS_UPDATE=1 rewrites the expected files from what the
parser gives: review that diff line by line, as the expected records are the claim.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from processors.base import Context
from processors.logparse import ParseLog

CORPUS = Path(__file__).parent / "logcorpus"
# the format auto detection must choose for each file
FORMAT = {
    "alternatives": "alternatives",
    "apache_error": "apache_error",
    "apt_history": "apt_history",
    "apt_term": "apt_term",
    "bgl": "bgl",
    "bracket": "bracket",
    "cri": "cri",
    "docker": "docker",
    "dpkg": "dpkg",
    "ganesha": "ganesha",
    "glog": "glog",
    "golog": "golog",
    "hadoop": "log4j",
    "hdfs": "hdfs",
    "healthapp": "pipe",
    "hpc": "hpc",
    "journald": "journald",
    "json": "json",
    "letter": "letter",
    "logback": "logback",
    "logcat": "logcat",
    "logfmt": "logfmt",
    "nginx_access": "combined",
    "nginx_error": "nginx_error",
    "npm": "npm",
    "oslo": "oslo",
    "postgres": "postgres",
    "proxifier": "proxifier",
    "python_basic": "python",
    "python_dash": "python_dash",
    "python_traceback": "log4j",
    "rfc5424": "rfc5424",
    "spark": "spark",
    "spring": "spring",
    "syslog": "syslog",
    "thunderbird": "thunderbird",
    "windows": "windows",
    "zookeeper": "zookeeper",
}
BARS = {"parsed": 0.95, "levels": 0.95, "messages": 0.90}


class _Out:
    def __init__(self) -> None:
        self.got: dict[str, list[tuple[Any, int]]] = {}
        self.total = 0

    def put(self, tag: str, values: list[Any], origins: Any) -> None:
        self.got.setdefault(tag, []).extend(zip(values, origins, strict=True))
        self.total += len(values)


def _lines(path: Path) -> list[str]:
    """The lines as the reader splits them: at "\n" and "\r\n" (a "\r" inside stays)."""
    text = path.read_bytes().decode("utf-8").removesuffix("\n")
    return [line.removesuffix("\r") for line in text.split("\n")]


def parse(path: Path, **options: Any) -> tuple[list[tuple[dict[str, Any], int]], int, dict]:
    """The records of `path` with their line numbers, the unparsed lines, the summary."""
    node = ParseLog(unparsed="unparsed", tz="UTC", year=2026, **options)
    ctx = Context("parse", ("record", "unparsed"), path.name, "log")
    node.start(ctx)
    out = _Out()
    lines = _lines(path)
    for at in range(0, len(lines), 256):
        batch = lines[at : at + 256]
        node.process_batch("log", batch, range(at + 1, at + 1 + len(batch)), out)
    node.flush_batch(out)
    return out.got.get("record", []), len(out.got.get("unparsed", [])), ctx.aggregates["parse"]


def score(path: Path) -> dict[str, Any]:
    """How the parser does on `path` against its expected records."""
    records, unparsed, summary = parse(path)
    got = {origin: rec for rec, origin in records}
    expected = [json.loads(x) for x in path.with_suffix(".expected.jsonl").read_text().splitlines()]
    lines = len(_lines(path))
    leveled = [e for e in expected if "level" in e]
    with_component = [e for e in expected if "component" in e]

    def share(items: list[dict[str, Any]], key: str) -> float | None:
        if not items:
            return None
        right = sum(1 for e in items if got.get(e["line"], {}).get(key) == e[key])
        return right / len(items)

    return {
        "file": path.name,
        "format": summary["format"],
        "lines": lines,
        "parsed": 1 - unparsed / lines,
        "records": f"{len(records)}/{len(expected)}",
        "levels": share(leveled, "level"),
        "components": share(with_component, "component"),
        "messages": share(expected, "message"),
    }


def _files() -> list[Path]:
    return sorted(CORPUS.glob("*.log"))


def test_every_format_has_a_file_in_the_corpus() -> None:
    from processors.logformats import FORMATS

    covered = {FORMAT[p.stem] for p in _files()}
    assert set(FORMATS) - covered <= {"go_panic", "timestamped"}, set(FORMATS) - covered
    assert sorted(FORMAT) == sorted(p.stem for p in _files())
    sources = (CORPUS / "SOURCES.md").read_text()
    assert [p.name for p in _files() if f"`{p.name}`" not in sources] == []


@pytest.mark.skipif(not os.environ.get("LOGCORPUS_UPDATE"), reason="LOGCORPUS_UPDATE=1 only")
def test_update_the_expected_records() -> None:
    for path in _files():
        records, _, _ = parse(path)
        rows = []
        for rec, origin in records:
            row: dict[str, Any] = {"line": origin}
            for key in ("level", "component", "message"):
                if key in rec:
                    row[key] = rec[key]
            rows.append(json.dumps(row, ensure_ascii=False))
        path.with_suffix(".expected.jsonl").write_text("\n".join(rows) + "\n")


def test_the_corpus_parses_above_the_bars() -> None:
    rows = [score(path) for path in _files()]

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    print("\n| file | format | lines | records got/expected | parsed | levels | components "
          "| messages |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        print(f"| {r['file']} | {r['format']} | {r['lines']} | {r['records']} | "
              f"{pct(r['parsed'])} | {pct(r['levels'])} | {pct(r['components'])} | "
              f"{pct(r['messages'])} |")  # fmt: skip
    wrong_format = [(r["file"], r["format"]) for r in rows
                    if r["format"] != FORMAT[r["file"].removesuffix(".log")]]  # fmt: skip
    assert wrong_format == []
    under = [
        (r["file"], bar, round(r[bar], 3))
        for r in rows
        for bar, floor in BARS.items()
        if r[bar] is not None and r[bar] < floor
    ]
    assert under == [], f"under the bars {BARS}: {under}"
