"""parse_log: detection per file, multi-line records and their bounds, user formats, and
the normalised `time` and `level`, through the engine as a pipeline runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError
from processors.logformats.times import Clock, zone
from processors.logparse import ParseLog
from tests.processors.pipeline_helpers import chain, node

ROOT = Path(__file__).resolve().parents[2]


def parsed(run: Any, text: str, **options: Any) -> tuple[list[dict[str, Any]], list[str], dict]:
    """The records and unparsed lines of `text`, and the parse node's summary."""
    options = {"tz": "UTC", "year": 2026, "unparsed": "bad", **options}
    config = chain(node("in", "parse_log", **options))
    config["outputs"] = {"bad": {}}
    summary, out = run(config, text)
    records = [json.loads(line) for line in out.get("out", "").splitlines()]
    return records, out.get("bad", "").splitlines(), summary["aggregates"]["parse_log@in"]


JAVA = (
    "2026-11-22 10:00:01,123 ERROR [main] com.example.Shop - order 42 failed\n"
    "java.lang.IllegalStateException: stock is negative\n"
    "\tat com.example.Stock.take(Stock.java:31)\n"
    "Caused by: java.io.IOException: disk gone\n"
    "\t... 3 more\n"
    "2026-11-22 10:00:02,000 INFO [main] com.example.Shop - order 43 paid\n"
)


def test_a_stack_trace_joins_its_record_with_its_first_and_last_line(run: Any) -> None:
    records, bad, summary = parsed(run, JAVA)
    assert bad == [] and len(records) == 2
    assert records[0]["message"] == "order 42 failed\n" + "\n".join(JAVA.splitlines()[1:5])
    assert (records[0]["first_line"], records[0]["last_line"]) == (1, 5)
    assert "first_line" not in records[1]  # one line: its line is the record's own
    assert summary["joined"] == 4 and summary["unparsed"] == 0


def test_without_multiline_the_trace_is_unparsed(run: Any) -> None:
    records, bad, _ = parsed(run, JAVA, multiline=False)
    assert len(records) == 2 and records[0]["message"] == "order 42 failed"
    assert bad == JAVA.splitlines()[1:5]


def test_a_trace_across_many_batches_stays_one_record(run: Any) -> None:
    frames = "".join(f"\tat com.example.F{i}.run(F.java:{i})\n" for i in range(1000))
    text = (
        "2026-11-22 10:00:01 [ERROR] App: boom\n" + frames + "2026-11-22 10:00:02 [INFO] App: ok\n"
    )
    records, bad, _ = parsed(run, text)
    assert bad == [] and len(records) == 2
    assert records[0]["message"].count("\n") == 1000
    assert (records[0]["first_line"], records[0]["last_line"]) == (1, 1001)


def test_a_record_is_bounded_in_lines_and_bytes(run: Any) -> None:
    frames = [f"\tat com.example.F{i}.run(F.java:{i})" for i in range(50)]
    text = "2026-11-22 10:00:01 [ERROR] App: boom\n" + "\n".join(frames) + "\n"
    records, bad, _ = parsed(run, text, max_record_lines=10)
    assert records[0]["message"].split("\n")[1:] == frames[:10]
    assert records[0]["truncated"] is True and records[0]["last_line"] == 11
    assert bad == frames[10:]  # nothing lost: the rest are where unparsed lines go
    records, bad, _ = parsed(run, text, max_record_bytes=200)
    assert len(records[0]["message"]) <= len("boom") + 200 and records[0]["truncated"]
    assert len(bad) + records[0]["message"].count("\n") == 50


def test_a_go_panic_is_one_fatal_record(run: Any) -> None:
    text = (
        "2026/11/22 10:00:00 main.go:42: listening on :8080\n"
        "panic: runtime error: index out of range [5] with length 3\n\n"
        "goroutine 1 [running]:\nmain.main()\n\t/src/main.go:25 +0x1d\nexit status 2\n"
    )
    records, bad, _ = parsed(run, text)
    assert bad == [] and [r.get("level") for r in records] == [None, "FATAL"]
    assert records[1]["message"].endswith("main.main()\n\t/src/main.go:25 +0x1d\nexit status 2")


def test_detection_reports_the_format_and_its_rate_and_a_mixed_file_still_parses(
    run: Any,
) -> None:
    text = (
        "Dec 10 06:55:46 web01 sshd[24200]: Invalid user admin\n" * 3
        + '{"level": "error", "msg": "disk full"}\n'
        + "garbage\n"
    )
    records, bad, summary = parsed(run, text)
    assert summary["format"] == "syslog"
    assert summary["sample"] == {"lines": 5, "parsed": 3, "rate": 0.6, "also": {"json": 1}}
    assert summary["records"] == {"syslog": 3, "json": 1} and summary["parsed_rate"] == 0.8
    assert records[3]["level"] == "ERROR" and records[3]["message"] == "disk full"
    assert bad == ["garbage"]


def test_one_named_format_parses_only_its_own_lines(run: Any) -> None:
    text = "2026-11-22 10:00:00 [INFO] a: b\nDec 10 06:55:46 web01 sshd[1]: x\n"
    records, bad, summary = parsed(run, text, format="syslog")
    assert [r["component"] for r in records] == ["sshd"] and len(bad) == 1
    assert summary["format"] == "syslog" and summary["sample"] is None


def test_a_format_string_with_types(run: Any) -> None:
    fmt = "<date> <time> <pid:int> <level> <component>: <message>"
    text = "22/11/2026 10:00:01.250 4242 warn billing.worker: card 42 declined\nnope\n"
    records, bad, summary = parsed(run, text, format=fmt)
    assert records == [
        {
            "ts": "22/11/2026 10:00:01.250",
            "time": "2026-11-22T10:00:01.250Z",
            "pid": 4242,
            "level": "WARNING",
            "level_raw": "warn",
            "component": "billing.worker",
            "message": "card 42 declined",
        }
    ]
    assert bad == ["nope"] and summary["format"] == "custom"


def test_a_regular_expression_with_named_groups_beside_auto(run: Any) -> None:
    regex = r"(?P<ts>\d+) \| (?P<level>\w+) \| (?P<message>.*)"
    text = "1763805600 | E | payment declined\n2026-11-22 10:00:00 [INFO] API: up\n"
    records, bad, summary = parsed(run, text, format=[regex, "auto"])
    assert bad == [] and summary["records"] == {"custom": 1, "bracket": 1}
    assert records[0] == {
        "ts": "1763805600",
        "time": "2025-11-22T10:00:00Z",
        "level": "ERROR",
        "level_raw": "E",
        "message": "payment declined",
    }


@pytest.mark.parametrize(
    ("fmt", "says"),
    [
        ("<date> <when:clock> <message>", "unknown type 'clock'"),
        ("<date> <time> <message", "has a < or > that is no field"),
        ("<date> <date> <message>", "<date> appears twice"),
        ("plain words", "unknown format 'plain words'"),
        ("(?P<level>\\w+) (?P<message>.*", "invalid regular expression"),
        ("(?P<level>\\w+) (?P<1bad>.*)", "invalid regular expression"),
    ],
)
def test_check_config_names_a_bad_format(tmp_path: Path, fmt: str, says: str) -> None:
    config = chain(node("log", "parse_log", format=fmt))
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "main.py", "--check-config", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert "$.nodes[0].options.format" in output and says in output, output


def test_times_without_offset_take_the_zone_with_its_daylight_saving() -> None:
    paris = Clock(zone("tz", "Europe/Paris"))
    assert paris.iso("2026-01-15 10:00:00") == "2026-01-15T10:00:00+01:00"
    assert paris.iso("2026-07-15 10:00:00,5") == "2026-07-15T10:00:00.5+02:00"
    # the day clocks go forward: before and after 02:00
    assert paris.iso("2026-03-29 01:59:59") == "2026-03-29T01:59:59+01:00"
    assert paris.iso("2026-03-29 03:00:00") == "2026-03-29T03:00:00+02:00"
    assert Clock(zone("tz", "-05:30")).iso("2026-01-15 10:00:00") == "2026-01-15T10:00:00-05:30"
    assert Clock(zone("tz", "UTC")).iso("2026-01-15T10:00:00+0100") == "2026-01-15T10:00:00+01:00"
    assert Clock(zone("tz", "UTC")).iso("2026-02-30 10:00:00") is None  # no such day
    with pytest.raises(ConfigError, match="unknown time zone"):
        zone("tz", "Mars/Olympus")


def test_a_year_is_inferred_so_a_time_is_never_far_in_the_future() -> None:
    january = Clock(zone("tz", "UTC"), now=datetime(2027, 1, 2))
    assert january.parts(None, 12, 31, "23:59:59") == "2026-12-31T23:59:59Z"
    assert january.parts(None, 1, 3, "00:00:00") == "2027-01-03T00:00:00Z"  # a day ahead: ok
    assert january.parts(None, 2, 29, "00:00:00") == "2024-02-29T00:00:00Z"  # the last leap
    assert Clock(zone("tz", "UTC"), year=2020).parts(None, 5, 1, "10:00:00")[:4] == "2020"


def test_levels_map_onto_one_set_and_the_original_is_kept(run: Any) -> None:
    text = "".join(
        f"2026-11-22 10:00:00 [{word}] x: y\n"
        for word in ("Info", "warn", "SEVERE", "err", "crit", "E", "trace", "FATAL")
    )
    records, _, _ = parsed(run, text)
    assert [(r["level"], r.get("level_raw")) for r in records] == [
        ("INFO", "Info"),
        ("WARNING", "warn"),
        ("ERROR", "SEVERE"),
        ("ERROR", "err"),
        ("CRITICAL", "crit"),
        ("ERROR", "E"),
        ("TRACE", "trace"),
        ("FATAL", None),
    ]


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_record_lines"):
        ParseLog(max_record_lines=0)
    with pytest.raises(ConfigError, match="year"):
        ParseLog(year="2026")


@pytest.mark.integration
def test_an_endless_stack_trace_keeps_memory_flat(tmp_path: Path) -> None:
    """One record whose trace never ends: peak RSS for 8 MB and for 64 MB of it is the same
    (the record stops at its bounds; the rest streams to `unparsed`)."""
    peaks = []
    for mb in (8, 64):
        path = tmp_path / f"trace{mb}.log"
        frame = b"\tat com.example.Endless.call(Endless.java:42)\n"
        with path.open("wb") as f:
            f.write(b"2026-11-22 10:00:00 [ERROR] App: it never ends\n")
            block = frame * 20_000
            for _ in range(mb * (1 << 20) // len(block)):
                f.write(block)
        config = tmp_path / "pipeline.json"
        config.write_text(json.dumps(chain(node("in", "parse_log", unparsed="unparsed"))
                                     | {"outputs": {"unparsed": {}}}))  # fmt: skip
        with subprocess.Popen(
            [sys.executable, "main.py", "--input", str(path), "--config", str(config),
             "--results-dir", str(tmp_path / f"results{mb}"), "--no-fsync"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        ) as proc:  # fmt: skip
            assert proc.stdout is not None
            out = proc.stdout.read()  # bounded by the test's timeout
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == 0, out
        summary = json.loads(out)
        assert summary["aggregates"]["parse_log@in"]["joined"] == 1000
        peaks.append(usage.ru_maxrss / 1024)
    assert peaks[1] - peaks[0] < 16, peaks


BRACKET_LINES = [
    "2026-11-22 10:00:00 [INFO] API: the common line",
    "2026-11-22 10:00:01 [WARN] API: a level written otherwise",
    "",
    "",
    "2026-11-22T10:00:02 [INFO] API: a T between date and time",
    "2026-11-22 10:00:03.250 [INFO] API: a fraction",
    "2026-11-22 10:00:04Z [INFO] API: a zone",
    "2026-11-22 10:00:05+01:00 [ERROR] API: an offset",
    "2026-11-22 10:00:06 [INFO] no component",
    "2026-11-22 10:00:07\t[info]\t a.b/c-d:\t\ttabs, spaces \r and a carriage return ",
    "2026-11-22 10:00:08 [INFO] API:",
    "2026-11-22 10:00:09 [NOPE] API: no level",
    "2026-02-30 10:00:10 [INFO] API: no such day",
    "2026-03-29 02:30:00 [INFO] API: the hour daylight saving time skips",
    "2026-10-25 02:30:00 [INFO] API: the hour it repeats",
    "2026-11-22 10:00:11 [FATAL] API: \u00e9t\u00e9 \udcff a byte kept undecoded",
    "2026-11-22 10:00:12 [INFO] API: a line\nwith a line break in it",
    "  at com.example.Handler.run(Handler.java:12)",
    "",
]


@pytest.mark.parametrize("lines", [BRACKET_LINES, [BRACKET_LINES[0]] * 3 + BRACKET_LINES[1:16]])
def test_a_batch_of_bracket_lines_parses_as_each_line_alone(lines: list[str]) -> None:
    """The bracket format parses a batch in one pass (its speed); what it makes is what each
    line parsed alone makes, also for every line off its common shape, with the clock's
    cache cold and warm."""
    from processors.logformats import FORMATS

    paris = zone("tz", "Europe/Paris")
    alone = FORMATS["bracket"].make(Clock(paris, 2026))
    batched = FORMATS["bracket"].make(Clock(paris, 2026))
    expected = [alone(line) for line in lines]
    assert batched.batch(lines) == expected  # type: ignore[attr-defined]
    assert batched.batch(lines) == expected  # type: ignore[attr-defined]
    assert batched.batch(lines[::-1]) == expected[::-1]  # type: ignore[attr-defined]
    assert {"WARN", None} <= {r.get("level_raw") for r in expected if r} and None in expected
