"""Checks of one value of `pipeline_config.json`: each returns it, typed, or raises a
`ConfigError` keyed by where the value came from.

The config's own keys (`config.pipeline_parser`) and the built-in processors' options share
them, so a rule and its message are written once. A processor's option keys are relative
(`rules[1].pattern`); the node loader prefixes them with the node's JSON path, so a bad
regex in the second rule of node 3 reads `$.nodes[3].options.rules[1].pattern: invalid
regular expression …`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from config.errors import ConfigError

_W = TypeVar("_W", bound=str)
_V = TypeVar("_V")
_TAG = re.compile(r"[^\s]+")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_EXPECTED = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
}


def expand_env(key: str, text: str, environ: Mapping[str, str]) -> str:
    """`${VAR}` replaced by the environment's value, `${VAR:-default}` by `default` when
    VAR is unset or empty (as in the shell); an unset `${VAR}` is a config error."""

    def value(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if default is not None:
            return environ.get(name) or default
        if name not in environ:
            raise ConfigError(key, f"environment variable {name} is not set",
                              "export it before starting folderd")  # fmt: skip
        return environ[name]

    return _ENV_VAR.sub(value, text)


def kind(value: Any) -> str:
    """What a value is, for 'expected …, got <kind>': `number 3`, `string 'x'`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value!r}"[:80]
    if isinstance(value, int | float):
        return f"number {value}"
    return "a list" if isinstance(value, list) else "an object"


def typed(key: str, value: Any, expected: type[_V]) -> _V:
    """`value` if it is a str, int (not a bool), bool, list or dict as `expected` says."""
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(key, f"expected {_EXPECTED[expected]}, got {kind(value)}")


def string(key: str, value: Any, *, empty: bool = True) -> str:
    if empty:
        return typed(key, value, str)
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"expected a non-empty string, got {kind(value)}")
    return value


def integer(key: str, value: Any, low: int, high: int = 1 << 62) -> int:
    number = typed(key, value, int)
    if not low <= number <= high:
        raise ConfigError(key, f"expected a whole number from {low} to {high}, got {number}")
    return number


def limit(key: str, value: Any, high: int) -> int | None:
    """A whole number from 1 to `high`, or null for no limit."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(key, f"expected a whole number or null (no limit), got {kind(value)}")
    return integer(key, value, 1, high)


def boolean(key: str, value: Any) -> bool:
    return typed(key, value, bool)


def regex(key: str, value: Any, flags: int = 0) -> re.Pattern[str]:
    text = string(key, value)
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise ConfigError(key, f"invalid regular expression {text!r}: {exc}") from None


def regexes(key: str, value: Any, flags: int = 0) -> list[re.Pattern[str]]:
    """One pattern or a list of them."""
    if isinstance(value, str):
        return [regex(key, value, flags)]
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a pattern or a list of patterns, got {kind(value)}")
    return [regex(f"{key}[{i}]", v, flags) for i, v in enumerate(value)]


def tag(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _TAG.fullmatch(value):
        raise ConfigError(key, f"expected a tag name (non-empty, no spaces), got {kind(value)}")
    return value


def optional_tag(key: str, value: Any) -> str | None:
    return None if value is None else tag(key, value)


def choice(key: str, value: Any, choices: Sequence[_W]) -> _W:
    """One of `choices` (a Literal's words: the value is typed as that Literal)."""
    for word in choices:
        if value == word:
            return word
    raise ConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}")


def strings(key: str, value: Any) -> list[str]:
    """One string or a non-empty list of them."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(key, f"expected a string or a non-empty list, got {kind(value)}")
    return [string(f"{key}[{i}]", v) for i, v in enumerate(value)]


def number(key: str, value: Any, low: float, high: float = float("inf")) -> float:
    """A number (whole or not, never a boolean) from `low` to `high`."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(key, f"expected a number, got {kind(value)}")
    if not low <= value <= high:
        raise ConfigError(key, f"expected a number from {low} to {high}, got {value}")
    return float(value)


def string_map(key: str, value: Any) -> dict[str, str]:
    """An object whose values are all strings (HTTP headers, say); null is an empty one."""
    if value is None:
        return {}
    typed(key, value, dict)
    return {k: string(f"{key}.{k}", v) for k, v in value.items()}
