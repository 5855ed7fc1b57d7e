"""`Checker`: walks a part of the raw config JSON, collecting every problem it finds.

A config with ten mistakes gets ten located errors in one run, not one per run: each check
records its `ConfigError` (key = JSON path) and hands back a fallback, so the walk goes on.
The single-value rules are `config.values`'; this adds the walk around them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from config import values
from config.errors import ConfigError

_V = TypeVar("_V")  # what a check returns
_D = TypeVar("_D")  # the fallback, often None


class Checker:
    """Collects errors while walking the raw dict, so every problem is reported at once."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def fail(self, key: str, message: str, hint: str = "") -> None:
        self.errors.append(ConfigError(key, message, hint))

    def keys(self, obj: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown key", f"allowed: {', '.join(allowed)}")

    def value(
        self,
        check: Callable[..., _V],
        obj: dict[str, Any],
        key: str,
        path: str,
        default: _D,
        *args: Any,
    ) -> _V | _D:
        """`check(f"{path}.{key}", obj[key], *args)`; `default` if absent or a problem."""
        if key not in obj:
            return default
        try:
            return check(f"{path}.{key}", obj[key], *args)
        except ConfigError as exc:
            self.errors.append(exc)
            return default

    def typed(self, obj: dict[str, Any], key: str, path: str, kind: type, default: Any) -> Any:
        return self.value(values.typed, obj, key, path, default, kind)

    def integer(
        self, obj: dict[str, Any], key: str, path: str, default: int, low: int, high: int
    ) -> int:
        return self.value(values.integer, obj, key, path, default, low, high)

    def limit(
        self, obj: dict[str, Any], key: str, path: str, default: int | None, high: int
    ) -> int | None:
        return self.value(values.limit, obj, key, path, default, high)

    def nonempty(self, obj: dict[str, Any], key: str, path: str, default: str | None) -> str | None:
        return self.value(_nonempty, obj, key, path, default)

    def regex(self, obj: dict[str, Any], key: str, path: str) -> re.Pattern[str] | None:
        return self.value(values.regex, obj, key, path, None)

    def tag(self, value: Any, path: str) -> str | None:
        try:
            return values.tag(path, value)
        except ConfigError as exc:
            self.errors.append(exc)
            return None

    def tags(
        self, obj: dict[str, Any], key: str, path: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        if key not in obj:
            return default
        value = obj[key]
        if isinstance(value, str):
            one = self.tag(value, f"{path}.{key}")
            return default if one is None else (one,)
        if not isinstance(value, list) or not value:
            got = values.kind(value)
            self.fail(f"{path}.{key}", f"expected a tag or a non-empty list of tags, got {got}")
            return default
        items = [self.tag(v, f"{path}.{key}[{i}]") for i, v in enumerate(value)]
        return tuple(t for t in items if t is not None)

    def objects(self, items: list[Any], key: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(JSON path, item) for each object in the list at `$.key`; anything else is a
        problem."""
        for i, item in enumerate(items):
            path = f"$.{key}[{i}]"
            if isinstance(item, dict):
                yield path, item
            else:
                self.fail(path, f"expected an object, got {values.kind(item)}")


def _nonempty(key: str, value: Any) -> str:
    return values.string(key, value, empty=False)
