"""config.cli: the flags `main.py --help` shows, one per setting, with its variable."""

from __future__ import annotations

import pytest

from config.cli import build_parser
from config.loading import load
from config.settings import SETTINGS


def _help() -> str:
    return " ".join(build_parser().format_help().split())  # unwrapped


def test_every_setting_but_the_secret_has_a_flag_naming_its_variable() -> None:
    text = _help()
    for s in SETTINGS:
        if s.secret:
            assert s.flag not in text and f"[{s.env}]" not in text
        else:
            assert s.flag in text and f"[{s.env}]" in text, s.name


def test_a_value_flag_shows_its_default_and_a_choice_its_words() -> None:
    text = _help()
    assert "--max-attempts N attempts for transient errors before a file fails (default: 3)" in text
    assert "--log-format auto|json|console" in text
    assert "--workers N worker processes (default: CPU count) [FOLDERD_WORKERS]" in text


def test_a_switch_takes_no_value() -> None:
    assert load(["--poll", "--debug"], {}).poll is True
    with pytest.raises(SystemExit):
        load(["--poll=1"], {})


def test_an_unknown_flag_exits_2_with_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load(["--wokers", "2"], {})
    assert caught.value.code == 2
    assert "unrecognized arguments: --wokers 2" in capsys.readouterr().err
