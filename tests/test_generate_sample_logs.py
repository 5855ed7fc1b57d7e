"""generate_sample_logs.py run as a newcomer runs it (`make sample`): a real subprocess."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from python_calamine import CalamineWorkbook

SCRIPT = Path(__file__).resolve().parents[1] / "generate_sample_logs.py"
BRACKET = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[(DEBUG|INFO|WARN|ERROR|CRITICAL)\] [A-Z]+: \S"
)
PIPE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|(DEBUG|INFO|WARN|ERROR|CRITICAL)\|[A-Z]+\|\S")
TRACEBACK = ("Traceback ", "  ", "TimeoutError: ")
LEVEL_NAMES = {"DEBUG", "INFO", "WARN", "ERROR", "CRITICAL"}
SMALL = ["--large", "0", "--lines", "200", "--date", "2026-11-22"]


def generate(watch_dir: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run the generator to completion; return the printed lines."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--watch-dir", str(watch_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return done.stdout.splitlines()


def read_text(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def test_same_seed_and_date_give_the_same_files_byte_for_byte(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    generate(first, "--count", "7", "--seed", "42", *SMALL)
    generate(second, "--count", "7", "--seed", "42", *SMALL)
    files = sorted(p.name for p in (first / "unprocessed").iterdir())
    assert len(files) == 7
    assert files == sorted(p.name for p in (second / "unprocessed").iterdir())
    for name in files:
        a, b = first / "unprocessed" / name, second / "unprocessed" / name
        assert a.read_bytes() == b.read_bytes(), name


def test_every_format_is_there_and_well_formed_without_malformed_lines(tmp_path: Path) -> None:
    generate(tmp_path, "--count", "7", "--seed", "3", "--malformed", "0", "--quiet", *SMALL)
    files = sorted((tmp_path / "unprocessed").iterdir())
    suffixes = {"".join(p.suffixes) for p in files}
    assert suffixes == {".log", ".jsonl", ".csv", ".log.gz", ".xlsx"}
    assert all(re.fullmatch(r"(export_)?[a-z]+\d\d_20261122\.[a-z.]+", p.name) for p in files)
    seen = set()
    for path in files:
        if path.suffix == ".xlsx":  # typed cells: the time a date, the rest text
            rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Log").to_python()
            assert rows[0] == ["timestamp", "level", "component", "message"] and len(rows) > 1
            assert isinstance(rows[1][0], dt.datetime) and rows[1][1] in LEVEL_NAMES
            seen.add("xlsx")
            continue
        lines = read_text(path)
        assert lines, path.name
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in lines]
            assert {"timestamp", "level", "component", "message"} <= set(records[0])
            seen.add("json")
        elif path.suffix == ".csv":
            rows = list(csv.reader(lines))
            assert rows[0] == ["timestamp", "level", "component", "message"]
            assert all(len(row) == 4 for row in rows)
            seen.add("csv")
        elif all(PIPE.match(line) for line in lines):
            seen.add("pipe")
        else:
            log_lines = [line for line in lines if not line.startswith(TRACEBACK)]
            assert all(BRACKET.match(line) for line in log_lines), path.name
            seen.add("gz" if path.name.endswith(".gz") else "bracket")
    assert seen == {"bracket", "pipe", "json", "csv", "gz", "xlsx"}


def test_levels_components_and_a_share_of_malformed_lines(tmp_path: Path) -> None:
    generate(tmp_path, "--count", "2", "--seed", "5", "--malformed", "0.2", "--quiet", *SMALL)
    lines = [
        line
        for path in (tmp_path / "unprocessed").iterdir()
        for line in read_text(path)
        if not line.startswith(TRACEBACK)
    ]
    good = [line for line in lines if BRACKET.match(line) or PIPE.match(line)]
    bad = len(lines) - len(good)
    assert 0 < bad < len(lines) / 2
    assert {m for line in good for m in re.findall(r"DEBUG|INFO|WARN|ERROR", line)} == {
        "DEBUG",
        "INFO",
        "WARN",
        "ERROR",
    }


def test_large_files_reach_the_requested_size(tmp_path: Path) -> None:
    generate(tmp_path, "--count", "3", "--seed", "1", "--large", "1", "--large-mb", "1.5")
    sizes = sorted(p.stat().st_size for p in (tmp_path / "unprocessed").iterdir())
    assert sizes[-1] >= 1_500_000
    assert sizes[-2] < 1_500_000


def test_only_complete_files_ever_become_visible(tmp_path: Path) -> None:
    """Watch unprocessed/ while the generator writes, as the daemon would."""
    unprocessed = tmp_path / "unprocessed"
    unprocessed.mkdir()
    args = ["--count", "4", "--seed", "9", "--large", "2", "--large-mb", "3", "--quiet"]
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--watch-dir", str(tmp_path), *args])
    first_seen: dict[str, int] = {}
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            for entry in os.scandir(unprocessed):
                if entry.name.startswith("."):
                    continue  # a temp file: the daemon never claims it
                first_seen.setdefault(entry.name, entry.stat().st_size)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.wait(timeout=10) == 0
    final = {p.name: p.stat().st_size for p in unprocessed.iterdir()}
    assert len(final) == 4
    assert not [name for name in final if name.startswith(".")]  # no temp file left behind
    for name, size in first_seen.items():
        assert size == final[name], f"{name} was visible at {size} of {final[name]} bytes"
    for path in unprocessed.glob("*.gz"):
        read_text(path)  # a torn gzip stream would raise here


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    generate(tmp_path / "probe", "--count", "1", "--seed", "11", "--quiet", *SMALL)
    (name,) = [p.name for p in (tmp_path / "probe" / "unprocessed").iterdir()]
    watch_dir = tmp_path / "watch_dir"
    for state in ("unprocessed", "processed"):
        (watch_dir / state).mkdir(parents=True)
        (watch_dir / state / name).write_text(f"kept in {state}\n")
    generate(watch_dir, "--count", "1", "--seed", "11", "--quiet", *SMALL)
    assert (watch_dir / "unprocessed" / name).read_text() == "kept in unprocessed\n"
    assert (watch_dir / "processed" / name).read_text() == "kept in processed\n"
    stem, _, rest = name.partition(".")
    assert (watch_dir / "unprocessed" / f"{stem}-2.{rest}").exists()


def test_watch_dir_defaults_to_folderd_watch_dir(tmp_path: Path) -> None:
    env = {**os.environ, "FOLDERD_WATCH_DIR": str(tmp_path / "from_env")}
    subprocess.run(
        [sys.executable, str(SCRIPT), "--count", "1", "--quiet", *SMALL],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=60,
    )
    assert len(list((tmp_path / "from_env" / "unprocessed").iterdir())) == 1


def test_progress_names_every_file_written(tmp_path: Path) -> None:
    out = generate(tmp_path, "--count", "3", "--seed", "2", *SMALL)
    written = sorted(p.name for p in (tmp_path / "unprocessed").iterdir())
    assert sorted(Path(line.split()[1]).name for line in out[:-1]) == written
    assert out[-1].startswith("3 files")
