"""Pipeline throughput and memory, each variant in its own child process.

    python -m bench.bench_pipeline [--size-mb 200] [--with-1gb] [--long-lines]
                                   [--endless-trace] [--rounds 3]

Variants, all on the same generated log (bench/out/, gitignored):

  floor        a bare loop reading the file line by line as text
  passthrough  the engine with three `pass` nodes (its own overhead)
  default      the engine with the repository's pipeline_config.json
  handloop     the default pipeline's parsing and routing written as one plain loop

MB/s is the input size over the wall time of the work inside the child (interpreter
start-up excluded), on the second of two runs of the same file: a worker of the daemon
lives from file to file, so only its first file grows its heap (page faults the first run
pays; its time is in the JSON as `first_seconds`). Peak RSS is the child's, from wait4().
With --with-1gb the default
pipeline also runs on a 1 GB file, to show memory does not grow with input size; that file
is deleted afterwards. With --long-lines the passthrough engine also reads lines one byte
under the reader's default `max_line_bytes` (memory is bounded by a few times the limit),
and one line of 256 MiB, which fails at the limit without being read whole. With
--endless-trace the default pipeline reads 1 GB of one stack trace that never ends (one
record, then `\tat …` lines forever): its record stops at parse_log's bounds, so memory
does not grow.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import _rounds
from bench.pipeline_inputs import generate, generate_endless_trace, generate_long_lines
from bench.report import figure

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

PASSTHROUGH = {
    "routes": [{"start": "a"}],
    "nodes": [
        {"name": "a", "tag": "a", "use": "pass", "to": "b"},
        {"name": "b", "tag": "b", "use": "pass", "to": "c"},
        {"name": "c", "tag": "c", "use": "pass", "to": "end"},
    ],
}

# -- the variants, run inside the child ------------------------------------------------


def _opener(results: Path, name: str) -> Any:
    opened: dict[str, Any] = {}

    def open_output(suffix: str) -> Any:
        opened[suffix] = (results / f"{name}.{suffix}").open(
            "w", encoding="utf-8", buffering=1 << 16
        )
        return opened[suffix]

    return open_output, opened


def run_floor(path: Path, results: Path) -> dict[str, Any]:
    n = 0
    with path.open(encoding="utf-8") as f:
        for _line in f:
            n += 1
    return {"lines": n}


def run_engine(path: Path, results: Path, raw: dict[str, Any]) -> dict[str, Any]:
    from processors import ProcessorError
    from processors.loader import load

    pipeline = load(raw).build()
    open_output, opened = _opener(results, path.name)
    try:
        with path.open("rb") as stream:
            summary = pipeline.run_file(stream, path.name, open_output)
    except ProcessorError as exc:  # what failing costs is measured too (--long-lines)
        return {"lines": 0, "error": exc.message}
    finally:
        for f in opened.values():
            f.close()
    return {"lines": summary["lines_in"], "outputs": summary["outputs"]}


def run_handloop(path: Path, results: Path) -> dict[str, Any]:
    """What the default pipeline does (parse_log auto → counts → tag_level), by hand: the
    format found from the first 256 lines tried first, the others after it (no joining of
    stack traces, no templates)."""
    import itertools

    import orjson

    from processors.logformats import FORMATS, detect
    from processors.logformats.times import Clock

    targets = {
        "CRITICAL": "errors",
        "FATAL": "errors",
        "ERROR": "errors",
        "EMERGENCY": "errors",
        "ALERT": "errors",
        "WARN": "warnings",
        "WARNING": "warnings",
    }
    clock = Clock()
    with path.open(encoding="utf-8") as f:
        sample = [line.rstrip("\n") for line in itertools.islice(f, 256)]
    ranked = detect([(name, fmt.make(clock)) for name, fmt in FORMATS.items()], sample)
    best = next(name for name, _ in ranked if not FORMATS[name].catch_all)
    main = FORMATS[best].make(clock)
    main = getattr(main, "parse", main)  # a line at a time (a `Batched` format's own)
    others = [FORMATS[name].make(clock) for name, _ in ranked if name != best]
    open_output, opened = _opener(results, path.name)
    files: dict[str, Any] = {}
    levels: Counter[Any] = Counter()
    components: Counter[Any] = Counter()
    dumps = orjson.dumps
    n = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            n += 1
            line = line.rstrip("\n")
            rec = main(line)
            if rec is None:
                rec = next((r for p in others if (r := p(line)) is not None), None)
            if rec is None:
                name, text = "unparsed", line
            else:
                level = rec.get("level")
                levels[level] += 1
                components[rec.get("component")] += 1
                name = targets.get(level, "out")  # type: ignore[arg-type]
                text = dumps(rec).decode()
            out = files.get(name)
            if out is None:
                out = files[name] = open_output(name)
            out.write(text + "\n")
    for fh in opened.values():
        fh.close()
    return {"lines": n, "levels": len(levels), "components": len(components)}


def child(variant: str, path: Path) -> None:
    """Run `variant` on `path` twice and time both: the second run is the figure, as in
    the daemon, whose workers live from file to file with their heap already grown (a
    fresh process's first file also pays for growing it: `first_seconds`)."""
    results = OUT / "pipeline-results"
    results.mkdir(parents=True, exist_ok=True)
    if variant in ("passthrough", "default", "handloop"):
        import processors  # noqa: F401  (imports are start-up, not throughput)
    runs = {
        "floor": lambda: run_floor(path, results),
        "passthrough": lambda: run_engine(path, results, PASSTHROUGH),
        "default": lambda: run_engine(
            path, results, json.loads((ROOT / "pipeline_config.json").read_text())
        ),
        "handloop": lambda: run_handloop(path, results),
    }
    if variant not in runs:
        raise SystemExit(f"unknown variant {variant}")
    seconds = []
    for _ in range(2):
        for old in results.glob(f"{path.name}.*"):  # new files, as the daemon's temps are
            old.unlink()  # (rewriting a truncated one costs ext4 a flush at close)
        started = time.perf_counter()
        info = runs[variant]()
        seconds.append(time.perf_counter() - started)
    info["first_seconds"], info["seconds"] = seconds
    print(json.dumps(info))


# -- the parent --------------------------------------------------------------------------


def measure(variant: str, path: Path, tree: Path = ROOT) -> dict[str, Any]:
    """Run one variant in a fresh child (of the checkout `tree`); return its MB/s, peak
    RSS and CPU seconds (user + system: both runs and start-up)."""
    info = _rounds.measure("bench_pipeline", variant, [str(path)], cwd=tree)
    size_mb = path.stat().st_size / 1e6
    row = {
        "variant": variant if tree == ROOT else f"{variant} ({tree})",
        "cpu_s": round(info["cpu_s"], 2),
        "input_mb": round(size_mb),
        "mb_s": round(size_mb / info["seconds"], 1),
        "seconds": round(info["seconds"], 2),
        "first_mb_s": round(size_mb / info["first_seconds"], 1),
        "peak_rss_mb": round(info["peak_rss_mb"]),
        "lines": info["lines"],
    }
    if "error" in info:
        row["error"] = info["error"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument(
        "--with-1gb",
        action="store_true",
        help="also run the default pipeline on a 1 GB file (RSS check)",
    )
    parser.add_argument(
        "--long-lines",
        action="store_true",
        help="also read lines just under the line limit, and one far over it (RSS check)",
    )
    parser.add_argument(
        "--endless-trace",
        action="store_true",
        help="also run the default pipeline on 1 GB of one endless stack trace (RSS check)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every variant")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="also run the default pipeline of another checkout (e.g. an older commit's "
        "`git worktree`) in every round, and compare its CPU time with ours",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="only count the instructions a run of the default pipeline takes on the log "
        "(valgrind's callgrind: deterministic, whatever the load), ours and --against's",
    )
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    log = OUT / f"app_{args.size_mb}mb.log"
    generate(log, args.size_mb)
    if args.instructions:
        return instructions(log, [ROOT] + ([args.against.resolve()] if args.against else []))
    variants = ("floor", "passthrough", "default", "handloop")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    against: list[dict[str, Any]] = []
    for i in range(args.rounds):  # interleaved, so a burst of load hits every variant alike
        for variant in variants:
            runs[variant].append(measure(variant, log))
            print(f"round {i + 1}/{args.rounds}: {json.dumps(runs[variant][-1])}",
                  file=sys.stderr, flush=True)  # fmt: skip
        if args.against:
            against.append(measure("default", log, args.against.resolve()))
            print(f"round {i + 1}/{args.rounds}: {json.dumps(against[-1])}",
                  file=sys.stderr, flush=True)  # fmt: skip
    rows = [median_row(runs[v]) for v in variants] + ([median_row(against)] if against else [])
    if args.with_1gb:
        big = OUT / "app_1024mb.log"
        try:
            generate(big, 1024)
            row = measure("default", big)
            row["variant"] = "default (1 GB)"
            rows.append(row)
        finally:
            big.unlink(missing_ok=True)
    if args.long_lines:
        rows += long_lines()
    if args.endless_trace:
        trace = OUT / "endless_trace.log"
        try:
            generate_endless_trace(trace, 1024)
            row = measure("default", trace)
            row["variant"] = "default (1 GB, one endless stack trace)"
            rows.append(row)
        finally:
            trace.unlink(missing_ok=True)
    shutil.rmtree(OUT / "pipeline-results", ignore_errors=True)  # outputs: hundreds of MB
    report(rows, args.rounds)
    mb_s = {v: [r["mb_s"] for r in runs[v]] for v in variants}
    loop, plain = "a bare text line loop", "the same work as one plain loop"
    for variant, floor, of in (("passthrough", "floor", loop), ("default", "floor", loop),
                               ("default", "handloop", plain)):  # fmt: skip
        figure("pipeline", f"{variant}, {args.size_mb} MB log vs {of}", "MB/s", mb_s[variant],
               mb_s[floor], peak_rss_mb=median_row(runs[variant])["peak_rss_mb"])  # fmt: skip
    if against:
        cpu = [r["cpu_s"] for r in runs["default"]]
        figure("pipeline", f"default, {args.size_mb} MB log, CPU seconds vs {args.against}",
               "s", cpu, [r["cpu_s"] for r in against])  # fmt: skip
        figure("pipeline", f"default, {args.size_mb} MB log vs {args.against}", "MB/s",
               mb_s["default"], [r["mb_s"] for r in against])  # fmt: skip
    for row in rows[len(variants) + bool(against) :]:  # the memory checks: one run, no floor
        figure("pipeline", f"peak RSS, {row['variant']}, {row['input_mb']} MB", "MB",
               [row["peak_rss_mb"]], [], mb_s=row["mb_s"])  # fmt: skip
    return 0


def instructions(log: Path, trees: list[Path]) -> int:
    """The instructions one run of the default pipeline on `log` takes, in each checkout:
    a child (`--child default`, two runs) under valgrind's callgrind, less the same child
    on a log of one line (start-up, imports, building the pipeline), halved."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    one = OUT / "one_line.log"
    with log.open("rb") as f:
        one.write_bytes(f.readline())
    counts = {}
    for tree in trees:
        on = [_instructions(tree, path) for path in (log, one)]
        counts[tree] = (on[0] - on[1]) / 2
        print(f"{tree}: {counts[tree] / 1e6:,.0f} M instructions a run "
              f"({on[0] / 1e6:,.0f} M less {on[1] / 1e6:,.0f} M, halved)", flush=True)  # fmt: skip
    one.unlink()
    if len(trees) == 2:
        print(f"ours / {trees[1]} = {counts[trees[0]] / counts[trees[1]]:.3f}")
    return 0


def _instructions(tree: Path, path: Path) -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "bench.bench_pipeline", "--child", "default", str(path)],
        cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{proc.stderr[-2000:]}")
    return int(found[1])


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median MB/s (its RSS and seconds beside it), with the spread."""
    ordered = sorted(runs, key=lambda r: r["mb_s"])
    row = dict(ordered[len(ordered) // 2])
    row["spread"] = f"{ordered[0]['mb_s']}-{ordered[-1]['mb_s']}"
    return row


def long_lines() -> list[dict[str, Any]]:
    """Peak RSS for 4 lines one byte under the default line limit, and for a 256 MiB line."""
    from config.pipeline import ReaderConfig

    limit = ReaderConfig().max_line_bytes
    rows = []
    for variant, line_bytes, count in (
        ("passthrough (lines of limit - 1)", limit - 1, 4),
        ("passthrough (one 256 MiB line)", 256 << 20, 1),
    ):
        path = OUT / "long_lines.log"
        try:
            generate_long_lines(path, line_bytes, count)
            row = measure("passthrough", path)
        finally:
            path.unlink(missing_ok=True)
        row["variant"] = variant
        rows.append(row)
    return rows


def report(rows: list[dict[str, Any]], rounds: int) -> None:
    by = {r["variant"]: r for r in rows}
    print(f"\nmedian of {rounds} interleaved rounds (min-max); memory checks: one run each")
    print("| variant | input | MB/s | a fresh process's first run, MB/s | peak RSS |")
    print("|---|---|---|---|---|")
    for r in rows:
        spread = f" ({r['spread']})" if "spread" in r else ""
        print(f"| {r['variant']} | {r['input_mb']} MB | {r['mb_s']}{spread} | "
              f"{r['first_mb_s']} | {r['peak_rss_mb']} MB |")  # fmt: skip
    b = by["passthrough"]["mb_s"] / by["floor"]["mb_s"]
    c = by["default"]["mb_s"] / by["handloop"]["mb_s"]
    print(f"\npassthrough / floor = {b:.0%} (target >= 50%)   "
          f"default / handloop = {c:.0%}\n")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
