"""Built-ins that remember across lines: dedupe and aggregate.

Both keep bounded state: dedupe stores a 16-byte digest per distinct line (or only the
last `window` of them), aggregate at most `max_values` distinct values per field.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

import orjson

from config import values as opt
from processors.base import Context, Line, Outbox, field_of

OTHER = "(other)"
NONE = "(none)"


class Dedupe:
    """Drops lines already seen in this file (by the whole line, or a record's `key`);
    with `window`, only the last `window` distinct keys are remembered."""

    def __init__(self, key: str | None = None, window: int | None = None) -> None:
        self.key = None if key is None else opt.string("key", key, empty=False)
        self.window = None if window is None else opt.integer("window", window, 1)
        self.seen: set[bytes] | OrderedDict[bytes, None] = (
            set() if self.window is None else OrderedDict()
        )

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def _digest(self, line: Line) -> bytes:
        value = field_of(line, self.key) if self.key is not None else line
        data = (
            value.encode()
            if isinstance(value, str)
            else orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)
        )
        return hashlib.blake2b(data, digest_size=16).digest()

    def is_new(self, line: Line) -> bool:
        digest = self._digest(line)
        seen = self.seen
        if digest in seen:
            if isinstance(seen, OrderedDict):
                seen.move_to_end(digest)
            return False
        if isinstance(seen, OrderedDict):
            seen[digest] = None
            if self.window is not None and len(seen) > self.window:
                seen.popitem(last=False)
        else:
            seen.add(digest)
        return True

    def process(self, tag: str, line: Line) -> Line | None:
        return line if self.is_new(line) else None

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        is_new = self.is_new
        idx = [i for i, v in enumerate(values) if is_new(v)]
        out.put(self.to, [values[i] for i in idx], [origins[i] for i in idx])


class Aggregate:
    """Counts lines by the tag they arrived on (`"tag"`) and/or by record fields, into the
    file summary's `aggregates.<node name>`; passes the lines on unless `pass_lines` is
    false."""

    def __init__(self, by: Any = "tag", pass_lines: bool = True, max_values: int = 1000) -> None:
        self.by = opt.strings("by", by)
        self.pass_lines = opt.boolean("pass_lines", pass_lines)
        self.max_values = opt.integer("max_values", max_values, 1)
        self.counts: dict[str, Counter[Any]] = {field: Counter() for field in self.by}

    def targets(self, to: tuple[str, ...]) -> list[str]:
        return list(to[:1]) if self.pass_lines else []

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]
        self.ctx = ctx

    def process(self, tag: str, line: Line) -> Line | None:
        self.process_batch(tag, [line], [0], None)
        return line if self.pass_lines else None

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox | None
    ) -> None:
        for field, counts in self.counts.items():
            if field == "tag":
                counts[tag] += len(values)
                continue
            keys = [v.get(field) if v.__class__ is dict else None for v in values]
            try:
                counts.update(keys)
            except TypeError:  # unhashable values (lists, objects): count their text
                counts.update(k if isinstance(k, str) else orjson.dumps(k).decode() for k in keys)
            if len(counts) > self.max_values:
                self._fold(counts)
        if out is not None and self.pass_lines:
            out.put(self.to, values, origins)

    def _fold(self, counts: Counter[Any]) -> None:
        keep = dict(counts.most_common(self.max_values - 1))
        other = sum(counts.values()) - sum(keep.values())
        counts.clear()
        counts.update(keep)
        counts[OTHER] += other

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = {
            field: {(NONE if k is None else str(k)): n for k, n in counts.most_common()}
            for field, counts in self.counts.items()
        }
        return None
