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
    ("argv", "env", "key"),
    [
        (["--workers", "0"], {}, "--workers"),
        (["--settle", "soon"], {}, "--settle"),
        ([], {"FOLDERD_PORT": "http"}, "FOLDERD_PORT"),
        ([], {"FOLDERD_ZERO_MTIME": "maybe"}, "FOLDERD_ZERO_MTIME"),
    ],
)
def test_a_bad_value_names_its_source_and_what_was_expected(
    argv: list[str], env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(argv, env)
    assert err.value.key == key
    assert "expected" in str(err.value) and "got" in str(err.value)


def test_modes_are_exclusive() -> None:
    assert load(["--drain"], {}).mode == "drain"
    assert load(["--input", "x.log"], {}).input == Path("x.log")
    with pytest.raises(SystemExit):
        load(["--drain", "--input", "x"], {})
