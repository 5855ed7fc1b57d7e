"""Checks for built-in processors' options: each raises ConfigError keyed by the option.

The node loader prefixes the key with the node's JSON path, so a bad regex in the second
rule of node 3 reads `$.nodes[3].options.rules[1].pattern: invalid regular expression`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from config import ConfigError


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def string(name: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ConfigError(
            name, f"expected a{' non-empty' if not empty else ''} string, got {_kind(value)}"
        )
    return value


def regex(name: str, value: Any, flags: int = 0) -> re.Pattern[str]:
    text = string(name, value)
    try:
        return re.compile(text, flags)
    except re.error as exc:
        raise ConfigError(name, f"invalid regular expression {text!r}: {exc}") from None


def regexes(name: str, value: Any, flags: int = 0) -> list[re.Pattern[str]]:
    """One pattern or a list of them."""
    if isinstance(value, str):
        return [regex(name, value, flags)]
    if not isinstance(value, list):
        raise ConfigError(name, f"expected a pattern or a list of patterns, got {_kind(value)}")
    return [regex(f"{name}[{i}]", v, flags) for i, v in enumerate(value)]


def tag(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ConfigError(
            name, f"expected a tag name (non-empty, no spaces), got {_kind(value)} {value!r}"
        )
    return value


def optional_tag(name: str, value: Any) -> str | None:
    return None if value is None else tag(name, value)


def integer(name: str, value: Any, low: int, high: int = 1 << 62) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(name, f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, f"expected true or false, got {value!r}")
    return value


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def strings(name: str, value: Any) -> list[str]:
    """One string or a list of them."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(name, f"expected a string or a non-empty list, got {_kind(value)}")
    return [string(f"{name}[{i}]", v) for i, v in enumerate(value)]


def field_of(record: Any, field: str) -> Any:
    """A record's field, or None for text lines and records without it."""
    return record.get(field) if isinstance(record, dict) else None
