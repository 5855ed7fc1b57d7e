"""`markers`: ready markers for files and batch folders, checked into a typed config.

`file` is a pattern naming the marker of a file in the same folder: `{name}` is the
file's name (`x.csv` → `{name}.done` = `x.csv.done`), `{stem}` its name without its last
extension (`{stem}.ok` = `x.ok`). `folder` is the marker that makes a first-level folder
of unprocessed/ a batch (`true` for `_SUCCESS`, as Hadoop and Spark writers leave one).
`late_s`: a file waiting for its marker longer than that is shown as late.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from config import values
from config.errors import ConfigError

KEYS = ("file", "folder", "late_s")
DEFAULT_FOLDER_MARKER = "_SUCCESS"
_FIELD = re.compile(r"\{(\w*)\}")


@dataclass(frozen=True)
class MarkersConfig:
    file: str | None = None  # e.g. "{name}.done"; None: a file needs no marker
    folder: str | None = None  # e.g. "_SUCCESS"; None: no batch folders
    late_s: float = 3600.0

    @property
    def _split(self) -> tuple[str, str, str]:
        """(prefix, field, suffix) of the file pattern."""
        pattern = self.file or ""
        m = _FIELD.search(pattern)
        if m is None:
            return pattern, "", ""
        return pattern[: m.start()], m.group(1), pattern[m.end() :]

    def marker_of(self, name: str) -> str | None:
        """The name of the marker the file called `name` waits for (None: none)."""
        if self.file is None:
            return None
        prefix, field, suffix = self._split
        stem = name.rpartition(".")[0] if "." in name.lstrip(".") else name
        return f"{prefix}{name if field == 'name' else stem}{suffix}"

    def is_file_marker(self, name: str) -> bool:
        """Whether `name` has the shape of a file's marker (then it is never an input)."""
        if self.file is None:
            return False
        prefix, _, suffix = self._split
        return len(name) > len(prefix) + len(suffix) and name.startswith(prefix) and (
            name.endswith(suffix))  # fmt: skip

    def data_names(self, marker: str) -> tuple[str, str]:
        """What the marker called `marker` marks: ("name", x) for a `{name}` pattern (the
        file called x), ("stem", x) for a `{stem}` one (the files whose stem is x)."""
        prefix, field, suffix = self._split
        return field, marker[len(prefix) : len(marker) - len(suffix)]


def parse_markers(raw: Any, path: str = "$.markers") -> tuple[MarkersConfig, list[ConfigError]]:
    errors: list[ConfigError] = []
    if not isinstance(raw, dict):
        return MarkersConfig(), [ConfigError(path, f"expected an object, got {values.kind(raw)}")]
    for key in raw:
        if key not in KEYS:
            allowed = f"allowed: {', '.join(KEYS)}"
            errors.append(ConfigError(f"{path}.{key}", "unknown key", allowed))
    file = None
    if raw.get("file") is not None:
        try:
            file = _file_pattern(f"{path}.file", raw["file"])
        except ConfigError as exc:
            errors.append(exc)
    folder = None
    if raw.get("folder") not in (None, False):
        value = raw["folder"]
        if value is True:
            folder = DEFAULT_FOLDER_MARKER
        elif not isinstance(value, str) or not _plain_name(value):
            errors.append(ConfigError(f"{path}.folder", f"expected a file name or true, got "
                                      f"{values.kind(value)}", "e.g. _SUCCESS"))  # fmt: skip
        else:
            folder = value
    late_s = MarkersConfig.late_s
    if "late_s" in raw:
        try:
            late_s = values.number(f"{path}.late_s", raw["late_s"], 0.0, 365 * 86400.0)
        except ConfigError as exc:
            errors.append(exc)
    if file is not None and folder is not None and MarkersConfig(file).is_file_marker(folder):
        errors.append(ConfigError(f"{path}.folder", f"{folder!r} has the shape of a file's marker "
                                  f"({file!r})", "choose names that differ"))  # fmt: skip
    return MarkersConfig(file, folder, late_s), errors


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\0" not in name and name not in (".", "..")


def _file_pattern(key: str, value: Any) -> str:
    pattern = values.string(key, value, empty=False)
    fields = _FIELD.findall(pattern)
    if len(fields) != 1 or fields[0] not in ("name", "stem"):
        raise ConfigError(key, f"{pattern!r} needs exactly one {{name}} or {{stem}}",
                          "e.g. {name}.done or {stem}.ok")  # fmt: skip
    literal = _FIELD.sub("", pattern)
    if not literal or "/" in literal or "\0" in literal:
        raise ConfigError(key, f"{pattern!r} must add a name part of its own, with no '/'",
                          "a file in the same folder, e.g. {name}.done")  # fmt: skip
    if pattern.startswith("."):
        raise ConfigError(key, f"{pattern!r} names a hidden file",
                          "hidden files are never seen: e.g. {name}.done")  # fmt: skip
    return pattern
