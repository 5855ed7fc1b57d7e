"""The engine: routing by tag, fan-out/fan-in, loops, outputs, counts, errors, trace."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import ProcessorError, readers
from processors.loader import load
from tests.processors.pipeline_helpers import chain, node


class Explode:
    """A user processor that fails on one line."""

    def process(self, tag: str, line: str) -> str:
        if line == "boom":
            raise ValueError("cannot handle boom")
        return line


class Remember:
    """Emits, at end of file, every line it saw: shows whether state leaks across files."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def process(self, tag: str, line: str) -> None:
        self.seen.append(line)

    def flush(self) -> str:
        return ",".join(self.seen)


class Stray:
    """Emits to a tag its node does not declare (and nothing consumes)."""

    def process(self, tag: str, line: str) -> Any:
        yield ("end" if line == "b" else "nowhere"), line


class Retry:
    """Loops a line back to its own tag until it has enough '+' marks."""

    def process(self, tag: str, line: str) -> Any:
        if line.count("+") < 3:
            yield "retry", line + "+"
        else:
            yield "end", line


def test_lines_flow_to_the_end_output_by_default(run: Any) -> None:
    summary, out = run({}, "a\nb\n")
    assert out == {"out": "a\nb\n"}
    assert summary["lines_in"] == summary["lines_out"] == 2
    assert summary["outputs"] == {"out": 2}
    assert summary["start_tag"] == "end"


@pytest.mark.parametrize(
    ("data", "lines"),
    [("", []), ("\n", [""]), ("a", ["a"]), ("a\r\nb\r\n", ["a", "b"]), ("a\n\nb", ["a", "", "b"])],
)
def test_line_splitting(run: Any, data: str, lines: list[str]) -> None:
    summary, out = run({}, data)
    assert summary["lines_in"] == len(lines)
    assert out.get("out", "") == "".join(f"{line}\n" for line in lines)


def test_fan_out_and_fan_in(run: Any) -> None:
    config = chain(
        node("in", "pass", to=["left", "right"]),
        node("left", "upper", to="merged"),
        node("right", "lower", to="merged"),
        node("merged", "pass", to="end"),
    )
    summary, out = run(config, "Ab\nCd\n")
    # lines meeting again at one tag are back in input-line order
    assert out["out"] == "AB\nab\nCD\ncd\n"
    assert summary["tags"] == {"in": 2, "left": 2, "right": 2, "merged": 4, "end": 4}
    assert summary["added"] == 2 and summary["dropped"] == 0
    # each node counts what it emitted per tag: exact per edge where two feed one tag
    to = {name: stats["to"] for name, stats in summary["processors"].items()}
    assert to == {"pass@in": {"left": 2, "right": 2}, "upper@left": {"merged": 2},
                  "lower@right": {"merged": 2}, "pass@merged": {"end": 4}}  # fmt: skip


def test_an_output_keeps_input_order_across_routes_of_different_lengths(run: Any) -> None:
    config = chain(
        node("in", "tag_regex", rules=[{"pattern": "^x", "tag": "long"}], default="end"),
        node("long", "pass", to="longer"),
        node("longer", "pass", to="end"),
    )
    _, out = run(config, "x1\na2\nx3\na4\n")
    assert out["out"] == "x1\na2\nx3\na4\n"


def test_a_guarded_loop_runs_until_lines_leave_it(run: Any) -> None:
    config = chain(
        {"name": "retry", "tag": "retry", "use": f"{__name__}:Retry", "to": ["retry", "end"]}
    )
    summary, out = run(config, "a\n")
    assert out["out"] == "a+++\n"
    assert summary["tags"]["retry"] == 4


def test_a_loop_past_the_hop_limit_fails_naming_its_tags(run: Any) -> None:
    config = chain(
        {"name": "retry", "tag": "retry", "use": f"{__name__}:Retry", "to": ["retry", "end"]},
        limits={"max_hops": 2},
    )
    with pytest.raises(ProcessorError) as info:
        run(config, "ok\na\n")
    err = info.value
    assert err.error_type == "HopLimit"
    assert "retry" in err.message and "2 hops" in err.message
    assert err.tag == "retry" and err.line == 1


def test_fan_out_explosion_is_stopped(run: Any) -> None:
    config = chain(
        node("a", "pass", to=["a", "b"]),
        node("b", "pass", to="end"),
        limits={"max_hops": 10_000, "max_expansion": 50},
    )
    with pytest.raises(ProcessorError) as info:
        run(config, "x\n")
    assert info.value.error_type == "FanOutLimit"


def test_unrouted_lines_are_counted_never_lost_silently(run: Any) -> None:
    config = chain({"name": "stray", "tag": "in", "use": f"{__name__}:Stray"})
    summary, out = run(config, "a\nb\nc\n")
    assert out == {"out": "b\n"}
    assert summary["unrouted"] == 2
    assert summary["unrouted_tags"] == {"nowhere": 2}
    assert summary["lines_in"] == summary["dropped"] + summary["unrouted"] + summary["lines_out"]


def test_outputs_are_opened_lazily_once_each(run: Any) -> None:
    config = chain(
        node("in", "tag_level", levels={"ERROR": "errors", "INFO": "info"}),
        outputs={"errors": {}, "info": {}, "never": {}},
    )
    config["nodes"].append(node("unused", "pass", to="never"))
    config["nodes"][0]["options"]["levels"]["DEBUG"] = "unused"
    summary, out = run(config, "ERROR a\nINFO b\nERROR c\n")
    assert out == {"errors": "ERROR a\nERROR c\n", "info": "INFO b\n"}
    assert summary["outputs"] == {"errors": 2, "info": 1}


def test_records_are_written_as_json_lines(run: Any) -> None:
    config = chain(node("in", "parse_log", tz="UTC"))
    _, out = run(config, "2026-11-22 10:00:00 [ERROR] API: msg\n")
    assert out["out"] == (
        '{"ts":"2026-11-22 10:00:00","time":"2026-11-22T10:00:00Z","level":"ERROR",'
        '"component":"API","message":"msg"}\n'
    )


def test_a_processor_exception_fails_the_file_with_line_and_traceback(run: Any) -> None:
    config = chain({"name": "explode", "tag": "in", "use": f"{__name__}:Explode"})
    with pytest.raises(ProcessorError) as info:
        run(config, "fine\nboom\nfine\n")
    err = info.value.to_dict()
    assert err["type"] == "ValueError"
    assert err["processor"] == "explode" and err["tag"] == "in" and err["line"] == 2
    assert "cannot handle boom" in err["message"]
    assert 'raise ValueError("cannot handle boom")' in err["traceback"]
    assert "processors/nodes.py" not in err["traceback"]  # starts at the plugin's code


def test_a_builtin_failure_names_the_line(run: Any) -> None:
    config = chain(node("in", "parse_log", to="rec"), node("rec", "upper"))
    with pytest.raises(ProcessorError) as info:
        run(config, "2026-11-22 10:00:00 [INFO] x\n")
    assert info.value.error_type == "TypeError"
    assert info.value.processor == "upper@rec" and info.value.line == 1


def test_state_is_fresh_for_every_file() -> None:
    pipeline = load(chain({"name": "r", "tag": "in", "use": f"{__name__}:Remember"})).build()
    texts = []
    for data in (b"a\nb\n", b"c\n"):
        out = io.StringIO()
        pipeline.run_file(io.BytesIO(data), "f.log", lambda _s, out=out: out)
        texts.append(out.getvalue())
    assert texts == ["a,b\n", "c\n"]
    assert pipeline.totals["r"]["files"] == 2 and pipeline.totals["r"]["lines_in"] == 3


def test_summary_counts_per_processor(run: Any) -> None:
    config = chain(node("in", "filter", to="up", include="keep"), node("up", "upper"))
    summary, _ = run(config, "keep 1\ndrop\nkeep 2\n")
    procs = summary["processors"]
    assert procs["filter@in"]["lines_in"] == 3 and procs["filter@in"]["lines_out"] == 2
    assert procs["upper@up"] == {**procs["upper@up"], "lines_in": 2, "lines_out": 2, "errors": 0}
    assert summary["dropped"] == 1


def test_a_processors_time_is_charged_to_it(run: Any) -> None:
    slow = "tests.daemon.slow_plugin:slow"  # 10 ms a line
    config = chain(node("in", "upper", to="slow"), node("slow", slow))
    summary, _ = run(config, "a\nb\nc\n")
    procs = summary["processors"]
    assert procs[f"{slow}@slow"]["seconds"] >= 0.03
    assert procs["upper@in"]["seconds"] < procs[f"{slow}@slow"]["seconds"] / 3


def test_trace_records_the_path_of_sampled_lines(run: Any) -> None:
    config = chain(
        node("in", "tag_level", levels={"ERROR": "errors"}),
        outputs={"errors": {}},
        trace={"first": 2, "every": 3},
    )
    lines = "INFO 1\nERROR 2\nINFO 3\nINFO 4\nINFO 5\nERROR 6\nINFO 7\n"
    summary, out = run(config, lines, trace=True)
    assert [(t["line"], t["path"]) for t in summary["trace"]] == [
        (1, ["in", "end"]),
        (2, ["in", "errors"]),
        (3, ["in", "end"]),
        (6, ["in", "errors"]),
    ]
    assert out["out"] == "INFO 1\nINFO 3\nINFO 4\nINFO 5\nINFO 7\n"  # order unchanged
    summary, _ = run(config, lines)
    assert "trace" not in summary


def test_stream_errors_propagate_untouched() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            raise OSError(5, "Input/output error")

    pipeline = load({}).build()
    with pytest.raises(OSError) as info:
        pipeline.run_file(Broken(), "f.log", lambda s: io.StringIO())  # type: ignore[arg-type]
    assert not isinstance(info.value, ProcessorError)
    assert info.value.errno == 5


def test_the_stream_is_only_read_sequentially() -> None:
    class Sequential:
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.data.read(n)

    out = io.StringIO()
    load({}).build().run_file(
        Sequential(b"x\n" * 100_000),
        "f.log",  # type: ignore[arg-type]
        lambda s: out,
    )
    assert out.getvalue().count("\n") == 100_000


# -- copy routes: lines that reach a file unchanged move as text blocks ---------------------

COPY = {
    "routes": [{"start": "a"}],
    "nodes": [
        {"name": "first", "tag": "a", "use": "pass", "to": "b"},
        {"name": "second", "tag": "b", "use": "pass", "to": "end"},
    ],
}


def _line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from processors import engine

    monkeypatch.setattr(engine, "_copy_chain", lambda *args: None)


@given(
    lines=st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"),
            max_size=12,
        ),
        max_size=20,
    ),
    crlf=st.booleans(),
    last_end=st.booleans(),
    bom=st.booleans(),
    chunk=st.integers(min_value=1, max_value=24),
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_copy_route_writes_and_counts_what_the_line_path_does(
    run: Any, lines: list[str], crlf: bool, last_end: bool, bom: bool, chunk: int
) -> None:
    end = "\r\n" if crlf else "\n"
    data = end.join(lines) + (end if lines and (last_end or not lines[-1]) else "")
    raw = (b"\xef\xbb\xbf" if bom else b"") + data.encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "CHUNK", chunk)
        mp.setattr(readers, "HEAD", chunk)
        copied = run(COPY, raw)
        _line_by_line(mp)
        by_line = run(COPY, raw)
    assert copied[1] == by_line[1]
    assert _without_seconds(copied[0]) == _without_seconds(by_line[0])


def _without_seconds(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "processors": {name: {**p, "seconds": 0} for name, p in
                                      summary["processors"].items()}}  # fmt: skip


def test_a_copy_route_is_taken_only_where_lines_reach_a_file_unchanged(run: Any) -> None:
    copies = {r["start"] for r in COPY["routes"]}
    assert load(COPY).build().copy_routes == copies
    fan_out = {**COPY, "nodes": [COPY["nodes"][0] | {"to": ["b", "end"]}, COPY["nodes"][1]]}
    upper = {**COPY, "nodes": [COPY["nodes"][0], COPY["nodes"][1] | {"use": "upper"}]}
    for config in (fan_out, upper):
        assert not load(config).build().copy_routes
    # a long line fails at the same line either way; a traced run goes line by line
    summary, out = run(COPY, "a\nb\n", trace=True)
    assert out["out"] == "a\nb\n" and summary["trace"]
    limited = {**COPY, "routes": [{"start": "a", "reader": {"max_line_bytes": 3}}]}
    with pytest.raises(ProcessorError) as info:
        run(limited, "abc\nabcd\n")
    assert info.value.line == 2 and info.value.error_type == "LineTooLong"
