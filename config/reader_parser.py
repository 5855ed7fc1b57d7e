"""The `reader` object of `pipeline_config.json` (top-level, or a route's own): how a file's
bytes become lines, checked into a `ReaderConfig` with located errors.

A route's reader starts from the top-level one (`base`), which starts from `ReaderConfig`'s
defaults: a key left out keeps what the level above says.
"""

from __future__ import annotations

import codecs
from dataclasses import fields
from typing import Any

from config import values
from config.checker import Checker
from config.pipeline import ERROR_POLICIES, LONG_LINES, READER_TYPES, ReaderConfig

READER_KEYS = tuple(f.name for f in fields(ReaderConfig))
_ONLY_FOR = {  # reader keys meaningful for some reader types only
    "delimiter": ("csv",),
    "quotechar": ("csv",),
    "header": ("csv", "excel"),
    "sheets": ("excel",),
    "max_workbook_mb": ("excel",),
    "max_unpacked_mb": ("excel",),
    "max_unpacked_ratio": ("excel",),
    "max_sheet_cells": ("excel",),
    "max_text_mb": ("excel",),
    "sheet_field": ("excel",),
    "row_field": ("excel",),
}


def parse_reader(c: Checker, raw: Any, path: str, base: ReaderConfig) -> ReaderConfig:
    """The reader object at `path`; `base` where it is not an object or a key is left out."""
    if not isinstance(raw, dict):
        c.fail(path, f"expected an object, got {values.kind(raw)}")
        return base
    c.keys(raw, path, READER_KEYS)
    kind = c.typed(raw, "type", path, str, base.type)
    if kind not in READER_TYPES:
        c.fail(f"{path}.type", f"unknown reader {kind!r}", f"one of {', '.join(READER_TYPES)}")
        kind = base.type
    encoding = c.typed(raw, "encoding", path, str, base.encoding)
    try:
        codecs.lookup(encoding)
    except LookupError:
        c.fail(f"{path}.encoding", f"unknown encoding {encoding!r}")
        encoding = base.encoding
    errors = c.typed(raw, "errors", path, str, base.errors)
    if errors not in ERROR_POLICIES:
        c.fail(
            f"{path}.errors",
            f"unknown error policy {errors!r}",
            f"one of {', '.join(ERROR_POLICIES)}",
        )
        errors = base.errors
    delimiter = c.typed(raw, "delimiter", path, str, base.delimiter)
    quotechar = c.typed(raw, "quotechar", path, str, base.quotechar)
    for key, value in (("delimiter", delimiter), ("quotechar", quotechar)):
        if len(value) != 1:
            c.fail(f"{path}.{key}", f"expected one character, got {value!r}")
    for key, kinds in _ONLY_FOR.items():
        if key in raw and kind not in kinds:
            c.fail(
                f"{path}.{key}",
                f"only meaningful for the {' and '.join(kinds)} reader",
                f'add "type": "{kinds[0]}"',
            )
    long_lines = c.value(values.choice, raw, "long_lines", path, base.long_lines, LONG_LINES)
    set_here = [key for key in ("long_lines", "type") if key in raw]
    if kind == "csv" and long_lines != "fail" and set_here:
        # a CSV record may span lines: cutting one out would tear the records around it
        c.fail(
            f"{path}.{set_here[0]}",
            f"long_lines {long_lines!r} is not possible with the csv reader",
            'set "long_lines": "fail" for it',
        )
    return ReaderConfig(
        type=kind,
        encoding=encoding,
        errors=errors,
        delimiter=delimiter[:1] or ReaderConfig.delimiter,
        quotechar=quotechar[:1] or ReaderConfig.quotechar,
        header=c.typed(raw, "header", path, bool, base.header),
        max_line_bytes=c.integer(raw, "max_line_bytes", path, base.max_line_bytes, 1, 1 << 30),
        long_lines=long_lines,
        max_gzip_ratio=c.limit(raw, "max_gzip_ratio", path, base.max_gzip_ratio, 10_000),
        max_decompressed_mb=c.limit(
            raw, "max_decompressed_mb", path, base.max_decompressed_mb, 1 << 30
        ),
        sheets=_sheets(c, raw, path, base.sheets),
        max_workbook_mb=c.integer(raw, "max_workbook_mb", path, base.max_workbook_mb, 1, 1 << 20),
        max_unpacked_mb=c.integer(raw, "max_unpacked_mb", path, base.max_unpacked_mb, 1, 1 << 30),
        max_unpacked_ratio=c.limit(
            raw, "max_unpacked_ratio", path, base.max_unpacked_ratio, 100_000
        ),
        max_sheet_cells=c.integer(raw, "max_sheet_cells", path, base.max_sheet_cells, 1, 1 << 40),
        max_text_mb=c.integer(raw, "max_text_mb", path, base.max_text_mb, 1, 1 << 30),
        sheet_field=_field_name(c, raw, "sheet_field", path, base.sheet_field),
        row_field=_field_name(c, raw, "row_field", path, base.row_field),
    )


def _sheets(
    c: Checker, raw: dict[str, Any], path: str, base: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if raw.get("sheets", base) is None:
        return None
    names = c.value(values.strings, raw, "sheets", path, base)
    return None if names is None else tuple(names)


def _field_name(
    c: Checker, raw: dict[str, Any], key: str, path: str, base: str | None
) -> str | None:
    if raw.get(key, base) is None:
        return None
    return c.nonempty(raw, key, path, base)
