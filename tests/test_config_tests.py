"""`main.py --test [FILE]`: the pipeline tests beside a config, run through the real
command line (the worker's code path, in a temp dir): the default config's own tests,
passing and failing cases, exit codes 0/1/2, the diff, the JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, write_config

LEVELS = {
    "name": "by_level",
    "tag": "in",
    "use": "tag_level",
    "options": {"levels": {"ERROR": "errors"}, "default": "end"},
}


def _main(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _config(tmp_path: Path, cases: list[dict[str, Any]] | None = None, **extra: Any) -> Path:
    """A config routing `<host>_<date>.log` (metadata) and anything else to `in`, with
    `cases` in the tests file beside it."""
    config = write_config(tmp_path / "pipe.json", [LEVELS], ["end", "errors"], **extra)
    raw = json.loads(config.read_text())
    raw["routes"] = [
        {"regex": r"^(?P<host>\w+)_(?P<date>\d{8})\.log$", "start": "in"},
        *raw["routes"],
    ]
    config.write_text(json.dumps(raw))
    if cases is not None:
        (tmp_path / "pipe.tests.json").write_text(json.dumps({"tests": cases}))
    return config


def _case(name: str = "levels", **expect: Any) -> dict[str, Any]:
    return {
        "name": name,
        "file": "web01_20240105.log",
        "lines": ["x [ERROR] boom", "y [INFO] fine", "z [ERROR] again"],
        "expect": expect,
    }


def test_the_default_config_passes_its_own_tests_and_writes_nothing(tmp_path: Path) -> None:
    results, watch = tmp_path / "results", tmp_path / "watch"
    run = _main("--test", "--results-dir", str(results), "--watch-dir", str(watch))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("12 passed, 0 failed")
    assert run.stdout.count("PASS") == 12
    assert not results.exists() and not watch.exists()  # nothing written but in a temp dir
    check = _main("--check-config")
    assert check.returncode == 0
    assert "tests: 12 declared (12 in pipeline_config.tests.json)" in check.stdout


# what each recipe's config expands at load (the sinks themselves are never used by --test)
RECIPE_ENV = {
    "elections": {"ELECTIONS_DB": "sqlite:///never-written.sqlite3"},
    "s3-mirror": {"MIRROR_BUCKET": "mirror", "S3_ENDPOINT": "http://127.0.0.1:9"},
    "voters": {"VOTERS_API_SECRET": "unused"},
}


@pytest.mark.parametrize("recipe", sorted(RECIPE_ENV))
def test_each_recipe_config_passes_its_own_tests(recipe: str, tmp_path: Path) -> None:
    config = ROOT / "examples" / recipe / "pipeline_config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    env.update(RECIPE_ENV[recipe])
    run = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--config", str(config), "--test"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 failed" in run.stdout and "PASS" in run.stdout
    assert list(tmp_path.iterdir()) == [], "nothing written, no database created"


def test_a_passing_case_exits_0(tmp_path: Path) -> None:
    config = _config(tmp_path, [_case(
        status="processed",
        start="in",
        metadata={"host": "web01", "date": "20240105"},
        outputs={
            "errors": ["x [ERROR] boom", {"regex": r"^z \[ERROR\]"}],
            "end": {"count": 1, "includes": [{"contains": "fine"}]},
        },
    )])  # fmt: skip
    run = _main("--test", "--config", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  levels  (pipe.tests.json $.tests[0])" in run.stdout


def test_a_failing_case_exits_1_with_a_numbered_diff_per_output(tmp_path: Path) -> None:
    config = _config(tmp_path, [
        _case("ok", outputs={"end": ["y [INFO] fine"]}),
        _case("wrong", metadata={"host": "web02"},
              outputs={"errors": ["x [ERROR] boom", "w [ERROR] other", "v"], "end": []}),
    ])  # fmt: skip
    run = _main("--test", "--config", str(config))
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "PASS  ok" in out and "FAIL  wrong  (pipe.tests.json $.tests[1])" in out
    assert "metadata: expected {'host': 'web02'}, got {'host': 'web01', 'date': '20240105'}" in out
    assert "output errors: 3 line(s) expected, 2 got" in out
    expected_diff = [
        "   1  'x [ERROR] boom'",
        "-    2  expected 'w [ERROR] other'",
        "+    2  got      'z [ERROR] again'",
        "-    3  expected 'v'  (missing)",
    ]
    for line in expected_diff:
        assert line in out
    assert "output end: 0 line(s) expected, 1 got" in out
    assert "+    1  got      'y [INFO] fine'  (not expected)" in out
    assert out.strip().endswith("1 passed, 1 failed")


def test_json_report_with_log_format_json(tmp_path: Path) -> None:
    config = _config(tmp_path, [_case(outputs={"errors": {"includes": [{"contains": "nope"}]}})])
    run = _main("--test", "--config", str(config), "--log-format", "json")
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert (report["passed"], report["failed"]) == (0, 1)
    (case,) = report["cases"]
    assert case["name"] == "levels" and case["passed"] is False
    (failure,) = case["failures"]
    assert failure["check"] == "output errors"
    assert failure["message"] == 'no line matches contains "nope"'
    assert failure["diff"] == ["     1  'x [ERROR] boom'", "     2  'z [ERROR] again'"]


def test_status_and_error_type_of_a_failing_file(tmp_path: Path) -> None:
    binary = {"name": "binary", "file": "a.log", "lines": ["ok", "\u0000"]}
    config = _config(tmp_path, [
        {**binary, "expect": {"error": "BinaryInput"}},
        {**binary, "name": "wrong type", "expect": {"error": "UnicodeDecodeError"}},
        {**binary, "name": "expects success", "expect": {}},
    ])  # fmt: skip
    run = _main("--test", "--config", str(config))
    assert run.returncode == 1
    assert "PASS  binary" in run.stdout
    assert "error: expected UnicodeDecodeError, got BinaryInput at line 2" in run.stdout
    assert "status: expected processed, got failed (BinaryInput at line 2" in run.stdout


def test_cases_in_the_config_and_in_a_given_file(tmp_path: Path) -> None:
    inline = _case("in the config", outputs={"errors": {"count": 2}})
    config = _config(tmp_path, [_case("beside", outputs={"end": {"count": 1}})], tests=[inline])
    run = _main("--test", "--config", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  in the config  (pipe.json $.tests[0])" in run.stdout
    assert "PASS  beside  (pipe.tests.json $.tests[0])" in run.stdout
    check = _main("--check-config", "--config", str(config))
    assert "tests: 2 declared (1 in pipe.json, 1 in pipe.tests.json)" in check.stdout
    # FILE: only its cases, a sample input beside it
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "big.log").write_text("a [ERROR] 1\n" * 1000)
    other = tmp_path / "other.json"
    sample = {"name": "sample", "file": "big.log", "input_file": "samples/big.log",
              "expect": {"outputs": {"errors": {"count": 1000}}}}  # fmt: skip
    other.write_text(json.dumps({"tests": [sample]}))
    run = _main("--test", str(other), "--config", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("1 passed, 0 failed")


def test_a_sink_output_is_checked_but_never_delivered(tmp_path: Path) -> None:
    db = tmp_path / "out.sqlite3"
    sink = {"sink": {"type": "sql", "url": f"sqlite:///{db}", "table": "t"}}
    config = _config(tmp_path, [_case(outputs={"errors": {"count": 2}})])
    raw = json.loads(config.read_text())
    raw["outputs"]["errors"] = sink
    config.write_text(json.dumps(raw))
    run = _main("--test", "--config", str(config))
    assert run.returncode == 0, run.stdout + run.stderr
    assert not db.exists()


def test_config_errors_exit_2_with_their_location(tmp_path: Path) -> None:
    def fails(cases: Any, message: str, **extra: Any) -> None:
        (tmp_path / "pipe.tests.json").unlink(missing_ok=True)
        config = _config(tmp_path, cases, **extra)
        run = _main("--test", "--config", str(config))
        assert run.returncode == 2, run.stdout + run.stderr
        assert message in run.stderr

    fails(
        [{"name": "x", "file": "a.log", "expect": {}}],
        "pipe.tests.json $.tests[0]: give the input as either 'lines' or 'input_file'",
    )
    fails(
        [_case(outputs={"nope": []})],
        "pipe.tests.json $.tests[0].expect.outputs.nope: no such output (end, errors)",
    )
    fails(
        [_case(outputs={"end": [{"regex": "("}]})],
        "$.tests[0].expect.outputs.end[0].regex: invalid regular expression",
    )
    fails([_case(), _case()], "$.tests[1].name: duplicate test name 'levels'")
    fails(None, "no pipeline tests declared")
    fails(None, "$.tests[0]: a test case needs 'expect'", tests=[{"name": "x", "file": "y"}])
    sample = {k: v for k, v in _case().items() if k != "lines"} | {"input_file": "gone.log"}
    fails([sample], "pipe.tests.json $.tests[0].input_file: no such file")
    check = _main("--check-config", "--config", str(_config(tmp_path, [{"name": 1}])))
    assert check.returncode == 2 and "pipe.tests.json $.tests[0]" in check.stderr
