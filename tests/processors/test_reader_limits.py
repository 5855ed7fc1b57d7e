"""The reader's limits: how long a line may be, how far a gzip file may expand."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generate_sample_logs import LogFaker, bracket_lines, write_lines
from processors import ProcessorError, readers
from processors.loader import load
from tests.processors.pipeline_helpers import chain, node

MIB = 1 << 20


def limited(limit: int, **reader: Any) -> dict[str, Any]:
    """Every line numbered with its input line number, so a skipped one shows as a gap."""
    numbered = node("in", "number", format="{n}:{line}", by="source")
    return chain(numbered, reader={"max_line_bytes": limit, **reader})


# -- long lines ---------------------------------------------------------------------------


def test_a_line_over_the_limit_fails_the_file_naming_its_line_number(run: Any) -> None:
    with pytest.raises(ProcessorError) as info:
        run(limited(10), b"short\n" + b"x" * 11 + b"\nshort\n")
    assert info.value.error_type == "LineTooLong"
    assert info.value.line == 2
    assert info.value.message == "line 2 is longer than 10 bytes (reader.max_line_bytes)"


def test_a_line_exactly_at_the_limit_passes(run: Any) -> None:
    # the limit counts bytes in UTF-8, without the line end: "é" is two
    data = "x" * 10 + "\r\n" + "é" * 5 + "\n" + "y" * 10
    summary, out = run(limited(10), data)
    assert out["out"] == f"1:{'x' * 10}\n2:{'é' * 5}\n3:{'y' * 10}\n"
    assert summary["lines_truncated"] == summary["lines_skipped"] == 0
    with pytest.raises(ProcessorError, match="line 1 is longer"):
        run(limited(10), "é" * 5 + "x")


def test_a_line_with_no_end_fails_before_the_file_is_read_whole(run: Any) -> None:
    class Endless(io.RawIOBase):
        """A line that never ends: only the limit stops reading it."""

        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int:
            buf[:] = b"x" * len(buf)
            self.read_bytes += len(buf)
            return len(buf)

    stream = Endless()
    pipeline = load(limited(2 * MIB)).build()
    with pytest.raises(ProcessorError) as info:
        pipeline.run_file(io.BufferedReader(stream), "in.log", lambda s: io.StringIO())
    assert info.value.line == 1
    assert stream.read_bytes < 4 * MIB


def test_a_small_limit_finds_one_long_line_among_many(run: Any) -> None:
    # a limit under the chunk's size, as Vector's and Fluent Bit's defaults are
    lines = [b"2026-11-22 10:00:00 [INFO] API: request %d handled" % i for i in range(30_000)]
    lines[23_456] = b"x" * (32 << 10)  # exactly at the limit
    summary, _ = run(limited(32 << 10), b"\n".join(lines) + b"\n")
    assert summary["lines_in"] == 30_000
    lines[23_456] += b"x"
    with pytest.raises(ProcessorError) as info:
        run(limited(32 << 10), b"\n".join(lines) + b"\n")
    assert info.value.line == 23_457


def test_truncate_keeps_the_start_of_long_lines_and_counts_them(run: Any) -> None:
    data = "ok\n" + "a" * 20 + "\n" + "é" * 8 + "\nok\n"
    summary, out = run(limited(9, long_lines="truncate"), data)
    # a character is never cut in two: 4 "é" take 8 bytes, a fifth would make 10
    assert out["out"] == f"1:ok\n2:{'a' * 9}\n3:{'é' * 4}\n4:ok\n"
    assert summary["lines_truncated"] == 2 and summary["lines_skipped"] == 0
    assert summary["lines_in"] == summary["lines_out"] == 4


def test_skip_leaves_long_lines_out_and_counts_them(run: Any) -> None:
    summary, out = run(limited(5, long_lines="skip"), "one\n" + "x" * 6 + "\nthree\n" + "y" * 9)
    assert out["out"] == "1:one\n3:three\n"  # the others keep their input line numbers
    assert summary["lines_skipped"] == 2 and summary["lines_truncated"] == 0
    assert summary["lines_in"] == 2  # lines that entered the pipeline


def test_the_csv_reader_bounds_lines_and_fields_alike(run: Any) -> None:
    config = {"routes": [{"start": "end", "reader": {"type": "csv", "max_line_bytes": 12}}]}
    _, out = run(config, 'id,note\n1,"short"\n', "a.csv")
    assert out["out"] == "id,note\n1,short\n"
    with pytest.raises(ProcessorError) as info:
        run(config, "id,note\n1,much too long\n", "a.csv")
    assert info.value.error_type == "LineTooLong" and info.value.line == 2
    # a quoted field spanning lines, each under the limit, is bounded by it as a whole
    with pytest.raises(ProcessorError) as info:
        run(config, 'id,note\n1,"one\ntwo\nthree\nfour"\n', "a.csv")
    assert info.value.error_type == "CsvError"
    assert "field larger than field limit (12)" in info.value.message


CHUNKS = st.integers(min_value=1, max_value=40)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(min_value=1, max_value=12),
    lines=st.lists(
        st.tuples(st.integers(min_value=0, max_value=16), st.sampled_from(["a", "é", "€", "😀"])),
        max_size=12,
    ),
    crlf=st.booleans(),
    last_end=st.booleans(),
    chunk=CHUNKS,
    mode=st.sampled_from(["fail", "truncate", "skip"]),
)
def test_the_limit_holds_whatever_the_chunking(
    run: Any,
    limit: int,
    lines: list[tuple[int, str]],
    crlf: bool,
    last_end: bool,
    chunk: int,
    mode: str,
) -> None:
    texts = [char * n for n, char in lines]
    end = "\r\n" if crlf else "\n"
    # the last line may go without its end, unless it is empty (then it would not exist)
    data = end.join(texts) + (end if texts and (last_end or not texts[-1]) else "")
    over = [i for i, text in enumerate(texts) if len(text.encode()) > limit]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "CHUNK", chunk)
        mp.setattr(readers, "HEAD", chunk)
        if mode == "fail" and over:
            with pytest.raises(ProcessorError) as info:
                run(limited(limit), data)
            assert info.value.line == over[0] + 1
            return
        summary, out = run(limited(limit, long_lines=mode), data)
    if mode == "truncate":
        # the longest start that fits, never half a character
        width = {i: len(texts[i][0].encode()) for i in over}
        kept = [
            (i, text[: limit // width[i]] if i in over else text) for i, text in enumerate(texts)
        ]
    else:
        kept = [(i, text) for i, text in enumerate(texts) if i not in over]
    assert out.get("out", "") == "".join(f"{i + 1}:{text}\n" for i, text in kept)
    assert summary["lines_truncated"] == (len(over) if mode == "truncate" else 0)
    assert summary["lines_skipped"] == (len(over) if mode == "skip" else 0)


# -- gzip expansion -------------------------------------------------------------------------


def zeros(size: int) -> bytes:
    """A gzip bomb in miniature: `size` bytes of zeros-lines, squeezed 340 times."""
    return gzip.compress((b"0" * 63 + b"\n") * (size // 64), compresslevel=6)


def test_gzip_beyond_max_decompressed_mb_fails_the_file(run: Any) -> None:
    bomb = zeros(4 * MIB)
    assert len(bomb) < 20_000
    with pytest.raises(ProcessorError) as info:
        run({"reader": {"max_decompressed_mb": 1}}, bomb, "app.log.gz")
    assert info.value.error_type == "GzipExpansion"
    assert info.value.message.startswith("gzip expands beyond 1 MiB: ")
    assert "reader.max_decompressed_mb" in info.value.message
    summary, _ = run({"reader": {"max_decompressed_mb": 5}}, bomb, "app.log.gz")
    assert summary["lines_in"] == 4 * MIB // 64


def test_gzip_beyond_the_default_ratio_fails_the_file(run: Any) -> None:
    bomb = zeros(readers.GZIP_GRACE + 8 * MIB)
    with pytest.raises(ProcessorError) as info:
        run({}, bomb, "app.log.gz")
    assert info.value.error_type == "GzipExpansion"
    assert info.value.message.startswith("gzip expands beyond 200 times its compressed size: ")
    assert "reader.max_gzip_ratio" in info.value.message
    summary, _ = run({"reader": {"max_gzip_ratio": None}}, bomb, "app.log.gz")
    assert summary["lines_in"] == (readers.GZIP_GRACE + 8 * MIB) // 64


def test_a_small_very_repetitive_gzip_passes(run: Any) -> None:
    summary, _ = run({}, zeros(4 * MIB), "app.log.gz")  # over 200 times, but under the grace
    assert summary["lines_in"] == 4 * MIB // 64


def test_a_real_gzipped_log_passes_the_default_limits(run: Any) -> None:
    block = io.BytesIO()
    fake = LogFaker(random.Random(7), "web01", dt.date(2026, 11, 22), malformed=0.02)
    write_lines(block, bracket_lines(fake), count=0, min_bytes=MIB)
    # past the grace, so the ratio is checked; gzip's 32 KiB window cannot see the repeats
    data = block.getvalue() * (readers.GZIP_GRACE // MIB + 2)
    summary, out = run({}, gzip.compress(data, compresslevel=6), "web01_20261122.log.gz")
    assert summary["lines_in"] == data.count(b"\n")
    assert len(out["out"]) == len(data)
