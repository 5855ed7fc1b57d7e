"""config.settings: each setting declared once, as a field of Settings, and what that
declaration gives the rest: the table, the Literal choices, mypy's checks."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from config import casts
from config.loading import defaults
from config.settings import BY_NAME, MODES, SETTINGS, Setting, Settings

ROOT = Path(__file__).resolve().parents[2]
# What a mode asks for: fields of Settings that are no setting (no flag of their own kind,
# no variable); every other field is one.
MODE_FIELDS = ["mode", "input", "test_file", "reprocess", "confirm", "sync"]


def test_every_field_but_the_modes_is_a_setting_in_declaration_order() -> None:
    names = [f.name for f in dataclasses.fields(Settings)]
    assert names == MODE_FIELDS + [s.name for s in SETTINGS]
    assert list(BY_NAME) == [s.name for s in SETTINGS]


def test_a_settings_default_is_its_fields_default() -> None:
    stock = defaults()
    for s in SETTINGS:
        assert getattr(stock, s.name) == s.default, s.name


def test_flag_and_variable_follow_from_the_name() -> None:
    s = BY_NAME["max_upload_mb"]
    assert (s.flag, s.env) == ("--max-upload-mb", "FOLDERD_MAX_UPLOAD_MB")


def test_only_the_secret_is_out_of_the_repr_and_off_the_command_line() -> None:
    hidden = {f.name for f in dataclasses.fields(Settings) if not f.repr}
    assert hidden == {s.name for s in SETTINGS if s.secret} == {"token"}


def test_a_switch_is_a_boolean_off_by_default() -> None:
    switches = [s for s in SETTINGS if s.switch]
    assert switches and all(s.default is False and s.cast is casts.boolean for s in switches)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.choices], ids=lambda s: s.name)
def test_a_choices_words_are_its_literal_types_words(setting: Setting) -> None:
    hint = typing.get_type_hints(Settings)[setting.name]
    assert typing.get_origin(hint) is typing.Literal
    assert setting.choices == typing.get_args(hint) and setting.default in setting.choices


def test_the_choices_are_the_ones_the_manual_documents() -> None:
    assert {s.name: s.choices for s in SETTINGS if s.choices} == {
        "log_format": ("auto", "json", "console"),
        "zero_mtime": ("fail", "accept"),
        "empty_files": ("fail", "process"),
    }
    assert MODES == ("watch", "input", "drain", "check_config", "test", "reprocess", "sync")


PROBE = """
from config.casts import Choice, positive_int
from config.loading import defaults
from config.settings import LogFormat, setting

if defaults().zero_mtime == "accepted":
    pass
bad_default: LogFormat = setting(Choice.of(LogFormat), "xml", "help")
wrong_cast: str = setting(positive_int, 3, "help")
"""


def test_mypy_refuses_a_word_no_choice_holds_and_a_default_of_the_wrong_type(
    tmp_path: Path,
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    found = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict-equality", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )  # fmt: skip
    lines = found.stdout.splitlines()
    assert found.returncode == 1, found.stdout + found.stderr
    assert any(":6: error: Non-overlapping equality check" in line for line in lines), lines
    assert any(':8: error: Argument 2 to "setting" has incompatible type' in line
               for line in lines), lines  # fmt: skip
    assert any(":9: error: Incompatible types in assignment" in line for line in lines), lines
    assert len(lines) == 3, lines
