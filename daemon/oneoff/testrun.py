"""`main.py --test [FILE]`: the pipeline tests declared beside a config, run for real.

Every case is one dry run (`daemon.oneoff.dryrun`: the worker's own code path, in a temp
directory, sinks left out) of its input under its file name, and its expectations
(`config.testcases`) checked against the summary and the lines of each output. A failed
check carries a readable diff: per output, every line numbered, expected against got.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import ConfigError
from config.pipeline_parser import read_json
from config.testcases import Case, Match, OutputExpect, beside, parse_cases, read_cases, subset
from daemon.oneoff.dryrun import DryRun, dry_pipeline, dry_run
from processors import LoadedPipeline

SHOWN_LINES = 40  # an output this long shows only its mismatched lines


@dataclass
class Failure:
    check: str  # "status", "metadata", "output errors"…
    message: str
    diff: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    case: Case
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        return not self.failures


def collect(config: Path, tests_file: Path | None = None) -> list[Case]:
    """The cases to run: those of `tests_file` if given, else the config's `tests` key and
    the file beside it. Raises ConfigError (the first problem) if any is malformed, if a
    sample input is missing, or if there is no case at all."""
    errors: list[ConfigError] = []
    if tests_file is not None:
        cases, errors = read_cases(tests_file)
    else:
        raw = read_json(config)
        cases, errors = parse_cases(
            raw.get("tests", []), f"{config.name} $.tests", config.name, config.parent
        )
        if (side := beside(config)).exists():
            more, more_errors = read_cases(side)
            cases, errors = cases + more, errors + more_errors
    if errors:
        raise errors[0]
    for case in cases:
        if case.input_file is not None and not case.input_file.is_file():
            raise ConfigError(f"{case.path}.input_file", f"no such file {case.input_file}")
    if not cases:
        where = tests_file or f"a 'tests' key in {config.name}, or {beside(config).name}"
        raise ConfigError(str(config), f"no pipeline tests declared (in {where})")
    return cases


def run_cases(loaded: LoadedPipeline, cases: list[Case]) -> list[CaseResult]:
    """Run every case; raise ConfigError if one expects an output the config has not."""
    for case in cases:
        for tag in case.outputs:
            if tag not in loaded.config.outputs:
                known = ", ".join(loaded.config.outputs)
                raise ConfigError(f"{case.path}.expect.outputs.{tag}", "no such output", known)
    pipeline = dry_pipeline(loaded)
    results = []
    with tempfile.TemporaryDirectory(prefix="folderd-test-") as tmp:
        for i, case in enumerate(cases):
            src = case.input_file
            if src is None:
                src = Path(tmp) / str(i)
                src.write_text("".join(f"{line}\n" for line in case.lines or ()), "utf-8")
            results.append(CaseResult(case, check(case, dry_run(pipeline, src, case.file))))
    return results


def check(case: Case, run: DryRun) -> list[Failure]:
    """Every expectation of `case` that `run` does not meet."""
    summary, counts = run.summary, run.summary.counts
    failures = []
    error = summary.error or {}
    if summary.status != case.status:
        got = summary.status.value
        if error:
            got += f" ({_error_text(error)})"
        failures.append(Failure("status", f"expected {case.status}, got {got}"))
    elif case.error is not None and error.get("type") != case.error:
        failures.append(Failure("error", f"expected {case.error}, got {_error_text(error)}"))
    if case.start is not None and counts.get("start_tag") != case.start:
        failures.append(
            Failure("start", f"expected tag {case.start}, got {counts.get('start_tag')}")
        )
    got = counts.get("metadata", {})
    if case.metadata is not None and case.metadata != got:
        failures.append(Failure("metadata", f"expected {case.metadata}, got {got}"))
    got = counts.get("aggregates", {})
    if not subset(case.aggregates, got):
        failures.append(Failure("aggregates", f"expected to include {case.aggregates}, got {got}"))
    for tag, expect in case.outputs.items():
        failure = _check_output(tag, expect, run.outputs.get(tag, []))
        if failure is not None:
            failures.append(failure)
    return failures


def _error_text(error: dict[str, Any]) -> str:
    line = f" at line {error['line']}" if error.get("line") else ""
    return f"{error.get('type')}{line}: {error.get('message')}"


def _check_output(tag: str, expect: OutputExpect, got: list[str]) -> Failure | None:
    name = f"output {tag}"
    if expect.lines is not None:
        wanted = expect.lines
        if len(wanted) == len(got) and all(m.matches(g) for m, g in zip(wanted, got, strict=True)):
            return None
        return Failure(name, f"{len(wanted)} line(s) expected, {len(got)} got", diff(wanted, got))
    if expect.count is not None and len(got) != expect.count:
        return Failure(name, f"{expect.count} line(s) expected, {len(got)} got")
    at = 0
    for match in expect.includes:
        found = next((i for i in range(at, len(got)) if match.matches(got[i])), None)
        if found is None:
            after = f" after line {at}" if at else ""
            lines = [f"  {n:>4}  {line!r}" for n, line in enumerate(got[:SHOWN_LINES], 1)]
            return Failure(name, f"no line{after} matches {match.describe()}", lines)
        at = found + 1
    return None


def diff(wanted: tuple[Match, ...], got: list[str]) -> list[str]:
    """Expected against got, line by line: `-` what was expected, `+` what came instead."""
    out = []
    short = max(len(wanted), len(got)) <= SHOWN_LINES
    for i in range(max(len(wanted), len(got))):
        n = i + 1
        m = wanted[i] if i < len(wanted) else None
        g = got[i] if i < len(got) else None
        if m is not None and g is not None and m.matches(g):
            if short:
                out.append(f"  {n:>4}  {g!r}")
            continue
        if m is not None:
            out.append(
                f"- {n:>4}  expected {m.describe()}" + ("" if g is not None else "  (missing)")
            )
        if g is not None:
            out.append(f"+ {n:>4}  got      {g!r}" + ("" if m is not None else "  (not expected)"))
    return out


def as_text(results: list[CaseResult]) -> str:
    """The console report: one line per case, each failure's diff under it, a total."""
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.case.name}  ({r.case.path})")
        for f in r.failures:
            lines.append(f"      {f.check}: {f.message}")
            lines += [f"        {d}" for d in f.diff]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def as_json(results: list[CaseResult]) -> dict[str, Any]:
    """The report as one JSON document (`--log-format json`)."""
    failed = sum(not r.passed for r in results)
    return {
        "passed": len(results) - failed,
        "failed": failed,
        "cases": [
            {
                "name": r.case.name,
                "path": r.case.path,
                "file": r.case.file,
                "passed": r.passed,
                "failures": [
                    {"check": f.check, "message": f.message, "diff": f.diff} for f in r.failures
                ],
            }
            for r in results
        ],
    }
