"""config.casts: a setting's raw text to its typed value, and what a user is told when the
text is no such value (through `load`, as the flag and as the variable)."""

from __future__ import annotations

from typing import Literal

import pytest

from config import ConfigError
from config.casts import Choice, host_name, instance_name, is_loopback
from config.loading import load
from config.settings import SETTINGS, Setting

CHOICES = [s for s in SETTINGS if s.choices]


@pytest.mark.parametrize("setting", CHOICES, ids=lambda s: s.name)
@pytest.mark.parametrize("raw", ["nope", "JSON", "fail ", ""])
def test_a_choice_refuses_any_other_word_naming_every_valid_one(setting: Setting, raw: str) -> None:
    words = ", ".join(setting.choices)
    for argv, env, key in (
        ([setting.flag, raw], {}, setting.flag),
        ([], {setting.env: raw}, setting.env),
    ):
        with pytest.raises(ConfigError) as caught:
            load(argv, env)
        assert str(caught.value).startswith(f"{key}: expected one of {words}, got {raw!r}")


@pytest.mark.parametrize("setting", CHOICES, ids=lambda s: s.name)
def test_a_choice_takes_each_of_its_words_exactly(setting: Setting) -> None:
    for word in setting.choices:
        assert getattr(load([setting.flag, word], {}), setting.name) == word
        assert getattr(load([], {setting.env: word}), setting.name) == word


def test_choice_of_a_literal_takes_its_words() -> None:
    cast = Choice.of(Literal["a", "b"])
    assert cast.choices == ("a", "b") and cast("b") == "b"
    with pytest.raises(ValueError, match=r"^expected one of a, b$"):
        cast("c")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), (" Yes ", True), ("ON", True), ("0", False), ("off", False), ("", False)],
)
def test_a_switch_variable_takes_the_usual_boolean_words(raw: str, expected: bool) -> None:
    assert load([], {"FOLDERD_POLL": raw}).poll is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Dash.Example.", "dash.example"), ("::1", "[::1]"), ("[0:0::1]", "[::1]")],
)
def test_host_names_take_the_form_the_dashboard_compares(raw: str, expected: str) -> None:
    assert host_name(raw) == expected


@pytest.mark.parametrize("raw", ["node-1", "a", "A.b_c-9", "x" * 64])
def test_instance_names_that_are_one_folder_name_anywhere(raw: str) -> None:
    assert instance_name(raw) == raw


@pytest.mark.parametrize("raw", ["", "-node", ".hidden", "a/b", "a b", "x" * 65, "é"])
def test_instance_names_that_are_not_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="expected 1-64 letters"):
        instance_name(raw)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True),
     ("::ffff:127.0.0.1", True), ("localhost", True), ("a.localhost.", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.1", False),
     ("dash.example", False)],
)  # fmt: skip
def test_is_loopback_only_for_loopback_addresses_and_localhost(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_source_roots_must_be_absolute() -> None:
    with pytest.raises(ConfigError, match=r"^--source-roots: expected absolute folder paths"):
        load(["--source-roots", "/srv,relative"], {})
