"""The one exception type of the config package."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting or config value is unusable; `str()` is a complete one-line message.

    `key` names where the value came from (`--workers`, `FOLDERD_PORT`, `$.nodes[2].type`).
    """

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        self.key = key
        self.message = message
        self.hint = hint
        text = f"{key}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
