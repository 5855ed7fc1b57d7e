"""Settings: one table gives flags, FOLDERD_* variables, types and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError
from config.settings import SETTINGS, defaults, load


def test_defaults_match_the_design() -> None:
    s = defaults()
    assert s.mode == "watch"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.watch_dir == Path("watch_dir") and s.results_dir == Path("results")
    assert s.settle == 0.5 and s.rescan_interval == 30.0 and s.max_attempts == 3
    assert "*.part" in s.ignore_patterns and s.no_fsync is False and s.token is None


def test_flag_beats_variable_beats_default() -> None:
    assert load([], {"FOLDERD_WORKERS": "3"}).workers == 3
    assert load(["--workers", "5"], {"FOLDERD_WORKERS": "3"}).workers == 5
    assert load(["--poll"], {}).poll is True
    assert load([], {"FOLDERD_POLL": "yes", "FOLDERD_NO_FSYNC": "1"}).no_fsync is True
    assert load([], {"FOLDERD_TOKEN": "s3cret"}).token == "s3cret"


def test_every_setting_has_a_flag_and_a_variable() -> None:
    for s in SETTINGS:
        assert s.env == "FOLDERD_" + s.name.upper()
        assert s.flag == "--" + s.name.replace("_", "-")
        assert s.help


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--workers", "0"], {}, "--workers: expected a whole number >= 1, got '0'"),
        (["--workers", "two"], {}, "--workers: expected a whole number >= 1, got 'two'"),
        (["--settle", "soon"], {}, "--settle: expected a number of seconds >= 0, got 'soon'"),
        (["--settle", "nan"], {}, "--settle: expected a number of seconds >= 0, got 'nan'"),
        ([], {"FOLDERD_PORT": "http"}, "FOLDERD_PORT: expected a port number from 0 to 65535"),
        ([], {"FOLDERD_PORT": "70000"}, "FOLDERD_PORT: expected a port number from 0 to 65535"),
        ([], {"FOLDERD_POLL": "maybe"}, "FOLDERD_POLL: expected a boolean (1/0, true/false"),
        ([], {"FOLDERD_ZERO_MTIME": "maybe"}, "FOLDERD_ZERO_MTIME: expected one of fail, accept"),
    ],
)
def test_a_bad_value_names_its_source_and_the_expected_form(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(argv, env)
    assert str(err.value).startswith(message)
    assert err.value.key == message.partition(":")[0]


def test_modes_are_exclusive() -> None:
    assert load(["--drain"], {}).mode == "drain"
    assert load(["--input", "x.log"], {}).input == Path("x.log")
    with pytest.raises(SystemExit):
        load(["--drain", "--input", "x"], {})
