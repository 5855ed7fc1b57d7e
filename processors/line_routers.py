"""Line routers: the built-ins that decide where each line goes next (pass, filter,
tag_regex, tag_level). Which tag a whole file starts at is `processors.file_routes`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from config import ConfigError
from config import values as opt
from processors.base import Context, Line, Outbox, field_of

_DEFAULT = object()  # "default" not given: the node's first `to` tag
_UNKNOWN = object()  # a level not looked up yet

LEVEL_WORD = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|ALERT|EMERG)\b"
)


def _text(line: Line, field: str | None) -> str:
    if field is not None:
        value = field_of(line, field)
        return "" if value is None else str(value)
    if isinstance(line, str):
        return line
    return orjson.dumps(line, default=str).decode()


class _Buckets:
    """Per-tag lists for one batch, put into the outbox in one go."""

    __slots__ = ("by_tag",)

    def __init__(self) -> None:
        self.by_tag: dict[str, tuple[list[Line], list[int]]] = {}

    def add(self, tag: str, value: Line, origin: int) -> None:
        bucket = self.by_tag.get(tag)
        if bucket is None:
            bucket = self.by_tag[tag] = ([], [])
        bucket[0].append(value)
        bucket[1].append(origin)

    def put(self, out: Outbox) -> None:
        for tag, (values, origins) in self.by_tag.items():
            out.put(tag, values, origins)


class Pass:
    """Sends every line on unchanged to every tag in `to` (fan-out by copy)."""

    def start(self, ctx: Context) -> None:
        self.to = ctx.to

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        return [(t, line) for t in self.to]

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        for t in self.to:
            out.put(t, values, origins)


class Filter:
    """Keeps lines matching any `include` pattern and no `exclude` pattern."""

    def __init__(
        self,
        include: Any = None,
        exclude: Any = None,
        field: str | None = None,
        ignore_case: bool = False,
    ) -> None:
        flags = re.IGNORECASE if opt.boolean("ignore_case", ignore_case) else 0
        self.include = opt.regexes("include", include, flags) if include is not None else []
        self.exclude = opt.regexes("exclude", exclude, flags) if exclude is not None else []
        self.field = None if field is None else opt.string("field", field, empty=False)

    def start(self, ctx: Context) -> None:
        self.to = ctx.to[0]

    def keep(self, line: Line) -> bool:
        text = _text(line, self.field)
        if self.include and not any(rx.search(text) for rx in self.include):
            return False
        return not any(rx.search(text) for rx in self.exclude)

    def process(self, tag: str, line: Line) -> Line | None:
        return line if self.keep(line) else None

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        if len(self.include) == 1 and not self.exclude and self.field is None:
            search = self.include[0].search
            try:
                idx = [i for i, v in enumerate(values) if search(v)]
            except TypeError:  # records among the lines: take the general path
                idx = [i for i, v in enumerate(values) if self.keep(v)]
        else:
            keep = self.keep
            idx = [i for i, v in enumerate(values) if keep(v)]
        if len(idx) == len(values):
            out.put(self.to, values, origins)
        else:
            out.put(self.to, [values[i] for i in idx], [origins[i] for i in idx])


class _Router:
    """A router whose unmatched lines go to `default`: the node's first `to` tag when not
    given, nowhere (dropped) when null."""

    default: Any

    def named_tags(self) -> list[str]:
        raise NotImplementedError

    def targets(self, to: tuple[str, ...]) -> list[str]:
        tags = self.named_tags()
        if self.default is _DEFAULT:
            tags.append(to[0])
        elif self.default is not None:
            tags.append(self.default)
        return list(dict.fromkeys(tags))

    def start(self, ctx: Context) -> None:
        if self.default is _DEFAULT:
            self.default = ctx.to[0]


class TagRegex(_Router):
    """Routes each line to the tag of the first (or every) rule whose pattern matches.

    Lines no rule matches go to `default` (the node's first `to` tag when not given;
    `null` drops them).
    """

    def __init__(
        self, rules: Any, mode: str = "first", default: Any = _DEFAULT, field: str | None = None
    ) -> None:
        if not isinstance(rules, list) or not rules:
            raise ConfigError("rules", 'expected a non-empty list of {"pattern": ..., "tag": ...}')
        self.rules: list[tuple[Any, str]] = []
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict) or set(rule) - {"pattern", "tag"}:
                raise ConfigError(f"rules[{i}]", 'expected {"pattern": ..., "tag": ...}')
            self.rules.append(
                (
                    opt.regex(f"rules[{i}].pattern", rule.get("pattern")).search,
                    opt.tag(f"rules[{i}].tag", rule.get("tag")),
                )
            )
        self.all = opt.choice("mode", mode, ("first", "all")) == "all"
        self.default = default if default in (_DEFAULT, None) else opt.tag("default", default)
        self.field = None if field is None else opt.string("field", field, empty=False)

    def named_tags(self) -> list[str]:
        return [t for _, t in self.rules]

    def _tags(self, line: Line) -> list[str]:
        text = line if line.__class__ is str and self.field is None else _text(line, self.field)
        found = []
        for search, tag in self.rules:
            if search(text):
                found.append(tag)
                if not self.all:
                    break
        if not found and self.default is not None:
            found.append(self.default)
        return found

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        return [(t, line) for t in self._tags(line)]

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        buckets = _Buckets()
        add = buckets.add
        tags_of = self._tags
        for value, origin in zip(values, origins, strict=True):
            for t in tags_of(value):
                add(t, value, origin)
        buckets.put(out)


class TagLevel(_Router):
    """Routes by log level: a record's `field` (default "level"), or the first level word
    (ERROR, WARN, INFO, …) in a text line. `levels` maps level names to tags; any other
    level goes to `default` (the node's first `to` tag when not given; `null` drops)."""

    def __init__(self, levels: Any, default: Any = _DEFAULT, field: str = "level") -> None:
        if not isinstance(levels, dict) or not levels:
            raise ConfigError("levels", 'expected an object like {"ERROR": "errors"}')
        self.levels = {str(k).upper(): opt.tag(f"levels.{k}", v) for k, v in levels.items()}
        self.default = default if default in (_DEFAULT, None) else opt.tag("default", default)
        self.field = opt.string("field", field, empty=False)
        self.known: dict[str, Any] = {}  # a record's level as written -> its target

    def named_tags(self) -> list[str]:
        return list(self.levels.values())

    def _target(self, level: str | None) -> Any:
        return self.levels.get(level or "", self.default)

    def level(self, line: Line) -> str | None:
        if line.__class__ is dict:
            value = line.get(self.field)
            return value.upper() if isinstance(value, str) else None
        match = LEVEL_WORD.search(line if isinstance(line, str) else str(line))
        return match.group(1) if match else None

    def process(self, tag: str, line: Line) -> Iterable[tuple[str, Line]]:
        target = self.levels.get(self.level(line) or "", self.default)
        return [] if target is None else [(target, line)]

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        buckets: dict[Any, tuple[list[Line], list[int]]] = {}
        known = self.known
        field = self.field
        search = LEVEL_WORD.search
        for value, origin in zip(values, origins, strict=True):
            if value.__class__ is dict:
                level = value.get(field)
                target = known.get(level, _UNKNOWN) if level.__class__ is str else _UNKNOWN
                if target is _UNKNOWN:
                    target = self._target(level.upper() if level.__class__ is str else None)
                    if level.__class__ is str and len(known) < 1000:
                        known[level] = target  # levels as written: one lookup next time
            else:
                match = search(value)
                target = self._target(match.group(1) if match else None)
            bucket = buckets.get(target)
            if bucket is None:
                bucket = buckets[target] = ([], [])
            bucket[0].append(value)
            bucket[1].append(origin)
        for target, (vals, origs) in buckets.items():
            if target is not None:
                out.put(target, vals, origs)
