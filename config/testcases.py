"""Pipeline tests declared beside a config: their shape, checked into typed cases.

Cases come from the config's own `tests` key and from the file beside it,
`<config stem>.tests.json` (`pipeline_config.tests.json`), an object whose `tests` key
holds the same list. Each case names its input (inline `lines`, or an `input_file`
relative to the file that declares it) and the `file` name it runs under (so routes and
name metadata are exercised), and what must come out (`expect`): the status and error
type, the start tag, the metadata (exactly: `{}` says none), the aggregates (every key
given must be equal; others are not checked), and lines per output tag. An output's
expectation is a list (the whole output, line by line) or an object with `count` and/or
`includes` (lines found anywhere, in order); a line is matched by a string (exactly),
`{"contains": s}`, `{"regex": p}` (searched) or `{"json": {...}}` (a JSON object holding
those keys and values). An output not named is not checked; `[]` says it must stay
empty. Problems are `ConfigError`s keyed by JSON path, as the config's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from config import values
from config.errors import ConfigError

CASE_KEYS = ("name", "file", "lines", "input_file", "expect")
EXPECT_KEYS = ("status", "error", "start", "metadata", "aggregates", "outputs")
OUTPUT_KEYS = ("count", "includes")
MatchKey = Literal["contains", "regex", "json"]  # the one key of a match object
MatchKind = Literal["exact", MatchKey]  # exact: the match is a plain string
Status = Literal["processed", "failed"]
MATCH_KINDS: tuple[MatchKey, ...] = get_args(MatchKey)
STATUSES: tuple[Status, ...] = get_args(Status)


def beside(config: Path) -> Path:
    """The tests file beside a config: `pipeline_config.json` → `pipeline_config.tests.json`."""
    return config.with_name(f"{config.stem}.tests.json")


@dataclass(frozen=True)
class Match:
    """One expected line: `kind` is exact, contains, regex or json."""

    kind: MatchKind
    value: Any

    def matches(self, line: str) -> bool:
        if self.kind == "exact":
            return bool(line == self.value)
        if self.kind == "contains":
            return self.value in line
        if self.kind == "regex":
            return self.value.search(line) is not None
        try:
            got = json.loads(line)
        except ValueError:
            return False
        return isinstance(got, dict) and subset(self.value, got)

    def describe(self) -> str:
        if self.kind == "exact":
            return repr(self.value)
        shown = self.value.pattern if self.kind == "regex" else self.value
        return f"{self.kind} {json.dumps(shown, ensure_ascii=False)}"


@dataclass(frozen=True)
class OutputExpect:
    """What one output must hold: `lines` exactly (when given), `count` lines, `includes`."""

    lines: tuple[Match, ...] | None = None
    count: int | None = None
    includes: tuple[Match, ...] = ()


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # the name the input runs under
    path: str  # where it was declared: "pipeline_config.tests.json $.tests[2]"
    lines: tuple[str, ...] | None = None
    input_file: Path | None = None  # resolved against the declaring file's folder
    status: Status = "processed"
    error: str | None = None
    start: str | None = None
    metadata: dict[str, Any] | None = None
    aggregates: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, OutputExpect] = field(default_factory=dict)


def subset(expected: Any, got: Any) -> bool:
    """Whether every key of `expected` (recursively, for objects) is in `got`, equal."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and all(
            k in got and subset(v, got[k]) for k, v in expected.items()
        )
    return bool(expected == got)


def parse_cases(
    raw: Any, path: str, origin: str, base: Path
) -> tuple[list[Case], list[ConfigError]]:
    """Check a `tests` list found at JSON path `path` of the file `origin` (input files
    resolve against `base`); return its cases and every problem."""
    if not isinstance(raw, list):
        return [], [ConfigError(path, f"expected a list of test cases, got {values.kind(raw)}")]
    cases: list[Case] = []
    errors: list[ConfigError] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        at = f"{path}[{i}]"
        try:
            case = _case(item, at, origin, base)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if case.name in names:
            errors.append(ConfigError(f"{at}.name", f"duplicate test name {case.name!r}"))
        names.add(case.name)
        cases.append(case)
    return cases, errors


def read_cases(path: Path) -> tuple[list[Case], list[ConfigError]]:
    """The cases of a tests file (`{"tests": [...]}`), and every problem in it."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [ConfigError(str(path), f"cannot read the tests file: {exc}")]
    except json.JSONDecodeError as exc:
        return [], [ConfigError(f"{path}:{exc.lineno}:{exc.colno}", f"not valid JSON: {exc.msg}")]
    if not isinstance(raw, dict) or set(raw) - {"tests", "description"}:
        return [], [ConfigError(f"{path} $", 'expected {"tests": [...]} (and a "description")')]
    return parse_cases(raw.get("tests", []), f"{path.name} $.tests", path.name, path.parent)


def _keys(obj: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ConfigError(path, f"expected an object, got {values.kind(obj)}")
    for key in obj:
        if key not in allowed:
            raise ConfigError(f"{path}.{key}", "unknown key", f"allowed: {', '.join(allowed)}")
    return obj


def _case(item: Any, at: str, origin: str, base: Path) -> Case:
    obj = _keys(item, at, CASE_KEYS)
    for key in ("name", "file", "expect"):
        if key not in obj:
            raise ConfigError(at, f"a test case needs {key!r}")
    name = values.string(f"{at}.name", obj["name"], empty=False)
    file = values.string(f"{at}.file", obj["file"], empty=False)
    if ("lines" in obj) == ("input_file" in obj):
        raise ConfigError(at, "give the input as either 'lines' or 'input_file'")
    lines = None
    if "lines" in obj:
        raw_lines = values.typed(f"{at}.lines", obj["lines"], list)
        lines = tuple(values.string(f"{at}.lines[{i}]", v) for i, v in enumerate(raw_lines))
    input_file = None
    if "input_file" in obj:
        input_file = base / values.string(f"{at}.input_file", obj["input_file"], empty=False)
    exp = _keys(obj["expect"], f"{at}.expect", EXPECT_KEYS)
    ep = f"{at}.expect"
    status = values.choice(f"{ep}.status", exp.get("status", Case.status), STATUSES)
    error = None
    if "error" in exp:
        error = values.string(f"{ep}.error", exp["error"], empty=False)
        if "status" not in exp:
            status = "failed"
        elif status != "failed":
            raise ConfigError(f"{ep}.error", "an error type is only expected of a failed file")
    raw_outputs = exp.get("outputs", {})
    if not isinstance(raw_outputs, dict):
        raise ConfigError(f"{ep}.outputs", f"expected an object, got {values.kind(raw_outputs)}")
    return Case(
        name=name,
        file=file,
        path=f"{origin} {at.split(' ', 1)[-1]}",
        lines=lines,
        input_file=input_file,
        status=status,
        error=error,
        start=values.optional_tag(f"{ep}.start", exp.get("start")),
        metadata=values.typed(f"{ep}.metadata", exp["metadata"], dict)
        if "metadata" in exp
        else None,
        aggregates=values.typed(f"{ep}.aggregates", exp.get("aggregates", {}), dict),
        outputs={
            values.tag(f"{ep}.outputs", tag): _output(spec, f"{ep}.outputs.{tag}")
            for tag, spec in raw_outputs.items()
        },
    )


def _output(spec: Any, path: str) -> OutputExpect:
    if isinstance(spec, list):
        return OutputExpect(lines=_matches(spec, path))
    obj = _keys(spec, path, OUTPUT_KEYS)
    count = values.integer(f"{path}.count", obj["count"], 0) if "count" in obj else None
    includes = _matches(obj.get("includes", []), f"{path}.includes")
    if count is None and not includes:
        raise ConfigError(path, "expected a list of lines, or 'count' and/or 'includes'")
    return OutputExpect(count=count, includes=includes)


def _matches(items: Any, path: str) -> tuple[Match, ...]:
    if not isinstance(items, list):
        raise ConfigError(path, f"expected a list of lines, got {values.kind(items)}")
    return tuple(_match(item, f"{path}[{i}]") for i, item in enumerate(items))


def _match(item: Any, path: str) -> Match:
    if isinstance(item, str):
        return Match("exact", item)
    obj = _keys(item, path, MATCH_KINDS)
    if len(obj) != 1:
        raise ConfigError(path, f"expected a string or one of {', '.join(MATCH_KINDS)}")
    kind, value = next(iter(obj.items()))
    if kind == "regex":
        return Match("regex", values.regex(f"{path}.regex", value))
    if kind == "json":
        return Match("json", values.typed(f"{path}.json", value, dict))
    return Match("contains", values.string(f"{path}.contains", value))


def declared(config: Path, raw: dict[str, Any]) -> tuple[dict[str, int], list[ConfigError]]:
    """How many cases each place declares (the config's `tests` key, the file beside it),
    and the problems of the file beside it (the config's own are the config's)."""
    counts = {}
    if isinstance(raw.get("tests"), list):
        counts[config.name] = len(raw["tests"])
    side = beside(config)
    if not side.exists():
        return counts, []
    cases, errors = read_cases(side)
    counts[side.name] = len(cases)
    return counts, errors
