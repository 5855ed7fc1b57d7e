"""Readers and file-level routing: encodings, byte order marks, gzip, CSV, binary input,
start-tag rules."""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors import ProcessorError, csv_rows, readers
from processors.loader import load
from tests.processors.pipeline_helpers import chain, node


def test_strict_decoding_fails_naming_byte_offset_and_line(run: Any) -> None:
    with pytest.raises(ProcessorError) as info:
        run({}, b"ok\nstill ok\nbad \xff here\n")
    err = info.value
    assert err.error_type == "UnicodeDecodeError"
    assert err.line == 3
    assert "byte offset 16" in err.message


def test_error_policy_replace_keeps_going(run: Any) -> None:
    summary, out = run({"reader": {"errors": "replace"}}, b"bad \xff here\n")
    assert out["out"] == "bad \ufffd here\n"
    assert summary["lines_in"] == 1


def test_other_encodings(run: Any) -> None:
    _, out = run({"reader": {"encoding": "latin-1"}}, "café\n".encode("latin-1"))
    assert out["out"] == "café\n"
    _, out = run({"reader": {"encoding": "utf-16"}}, "a\nb\n".encode("utf-16"))
    assert out["out"] == "a\nb\n"


def test_a_multibyte_character_split_across_chunks(run: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(readers, "CHUNK", 5)
    monkeypatch.setattr(readers, "HEAD", 3)
    _, out = run({}, "héllo wörld\r\nsécond\r\n".encode())
    assert out["out"] == "héllo wörld\nsécond\n"


def test_strict_error_offset_counts_earlier_chunks(run: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(readers, "CHUNK", 4)
    monkeypatch.setattr(readers, "HEAD", 4)
    with pytest.raises(ProcessorError) as info:
        run({}, b"abc\ndef\ngh\xffi\n")
    assert "byte offset 10" in info.value.message and info.value.line == 3


def test_binary_input_is_a_permanent_failure(run: Any) -> None:
    with pytest.raises(ProcessorError) as info:
        run({}, b"text\n\x89PNG\x00\x00\x00\rIHDR")
    assert info.value.error_type == "BinaryInput"
    assert info.value.line == 2 and "byte offset 9" in info.value.message


def test_gzip_is_decompressed_transparently(run: Any) -> None:
    data = gzip.compress(b"".join(b"line %d\n" % i for i in range(50_000)))
    summary, out = run({}, data, "app.log.gz")
    assert summary["lines_in"] == 50_000
    assert out["out"].endswith("line 49999\n")


def test_corrupt_gzip_is_a_permanent_failure(run: Any) -> None:
    data = gzip.compress(b"line\n" * 1000)
    with pytest.raises(ProcessorError) as info:
        run({}, data[:20] + b"\x00" * 10 + data[30:], "app.log.gz")
    assert info.value.error_type == "BadGzipFile"
    with pytest.raises(ProcessorError):
        run({}, data[: len(data) // 2], "app.log.gz")  # truncated


def test_a_utf8_bom_is_not_part_of_the_first_line(run: Any) -> None:
    _, out = run(chain(node("in", "upper")), b"\xef\xbb\xbfhello\nworld\n")
    assert out["out"] == "HELLO\nWORLD\n"
    # in another encoding those bytes are text
    _, out = run({"reader": {"encoding": "latin-1"}}, b"\xef\xbb\xbfhi\n")
    assert out["out"] == "ï»¿hi\n"


def test_a_utf8_bom_is_not_part_of_a_csv_header(run: Any) -> None:
    columns = [{"name": "id", "type": "int", "required": True}, {"name": "name"}]
    rows = node("rows", "csv_validate", emit="record", columns=columns)
    config = {"routes": [{"start": "rows", "reader": {"type": "csv"}}], "nodes": [rows]}
    _, out = run(config, b"\xef\xbb\xbfid,name\n7,ada\n", "people.csv")
    assert out["out"] == '{"id":7,"name":"ada"}\n'


def test_head_routes_and_byte_offsets_skip_the_bom(run: Any) -> None:
    routes = [{"head": r"\{", "start": "json"}, {"start": "end"}]
    config = {"routes": routes, "nodes": [node("json", "pass")]}
    summary, _ = run(config, b'\xef\xbb\xbf{"a": 1}\n')
    assert summary["start_tag"] == "json"
    with pytest.raises(ProcessorError) as info:
        run({}, b"\xef\xbb\xbfab\xff\n")
    assert "byte offset 5" in info.value.message  # offsets are the file's, BOM included


CSV = 'id,name,note\n1,ada,"multi\nline"\n2,"bob, jr",plain\n'


def test_csv_rows_with_header(run: Any) -> None:
    config = {"routes": [{"start": "end", "reader": {"type": "csv"}}]}
    summary, out = run(config, CSV, "people.csv")
    assert summary["lines_in"] == 2  # data rows; the header is not a line
    # rows are written back as CSV, preceded by the header
    assert out["out"] == 'id,name,note\n1,ada,"multi\nline"\n2,"bob, jr",plain\n'


def test_csv_rows_without_header_and_another_delimiter(run: Any) -> None:
    reader = {"type": "csv", "header": False, "delimiter": ";"}
    config = {"routes": [{"start": "rows", "reader": reader}], "nodes": [node("rows", "pass")]}
    _, out = run(config, "a;b\nc;d\n", "x.csv")
    assert out["out"] == "a,b\nc,d\n"


ROUTES = [
    {"regex": r"^(?P<host>[a-z0-9]+)_(?P<date>\d{8})\.log", "start": "host_log"},
    {"glob": "*.csv", "start": "csv"},
    {"glob": "*.jsonl", "start": "json"},
    {"head": r"\s*\{", "start": "json"},
    {"glob": "archive/*", "start": "archive"},
    {"start": "text"},
]


@pytest.mark.parametrize(
    ("rel_path", "data", "start"),
    [
        ("web01_20261122.log", b"x\n", "host_log"),
        ("sub/web01_20261122.log.gz", gzip.compress(b"x\n", mtime=0), "host_log"),
        ("report.csv", b"a,b\n", "csv"),
        ("events.jsonl", b"x\n", "json"),
        ("events.txt", b'  {"a": 1}\n', "json"),
        ("events.txt.gz", gzip.compress(b'{"a": 1}\n', mtime=0), "json"),
        ("archive/old.txt", b"x\n", "archive"),
        ("other/archive.txt", b"x\n", "text"),
        ("notes.txt", b"x\n", "text"),
    ],
)
def test_routes_pick_the_start_tag(run: Any, rel_path: str, data: bytes, start: str) -> None:
    tags = {"host_log", "csv", "json", "archive", "text"}
    config = {"routes": ROUTES, "nodes": [node(t, "pass") for t in sorted(tags)]}
    summary, _ = run(config, data, rel_path)
    assert summary["start_tag"] == start


def test_regex_groups_become_metadata(run: Any) -> None:
    config = {
        "routes": ROUTES,
        "nodes": [node(t, "pass") for t in ("host_log", "csv", "json", "archive", "text")],
    }
    summary, _ = run(config, b"x\n", "web01_20261122.log")
    assert summary["metadata"] == {"host": "web01", "date": "20261122"}


class SeeMetadata:
    def start(self, ctx: Any) -> None:
        self.meta = ctx.metadata

    def process(self, tag: str, line: str) -> str:
        return f"{self.meta['host']}: {line}"


def test_processors_see_the_metadata(run: Any) -> None:
    config = {
        "routes": ROUTES[:1],
        "nodes": [{"tag": "host_log", "use": f"{__name__}:SeeMetadata"}],
    }
    _, out = run(config, b"up\n", "db2_20261122.log")
    assert out["out"] == "db2: up\n"


def test_a_file_no_route_matches_fails_clearly(run: Any) -> None:
    with pytest.raises(ProcessorError) as info:
        run({"routes": [{"glob": "*.csv", "start": "end"}]}, b"x\n", "a.log")
    assert info.value.error_type == "NoRoute" and "a.log" in info.value.message


_field = st.lists(st.sampled_from(["a", ",", '"', "\n", "\r\n", " ", "é"]), max_size=6).map("".join)


@settings(max_examples=150, deadline=None)
@given(
    table=st.lists(st.lists(_field, min_size=3, max_size=3), min_size=1, max_size=12),
    ending=st.sampled_from(["\n", "\r\n"]),
    chunk=st.sampled_from([7, 64, 1 << 18]),
)
def test_csv_rows_are_the_csv_modules_with_line_breaks_in_values_as_newlines(
    table: list[list[str]], ending: str, chunk: int
) -> None:
    """Lines ending in "\\r\\n" or "\\n", quoted line breaks of either kind, any chunking:
    the rows the csv module reads from the text with every "\\r\\n" made "\\n", each
    numbered by the line it ends on."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=ending).writerows([["h1", "h2", "h3"], *table])
    text = buf.getvalue()
    expected = list(csv.reader(io.StringIO(text.replace("\r\n", "\n"), newline="")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers, "CHUNK", chunk)
        config = load({"routes": [{"start": "end", "reader": {"type": "csv"}}]}).config
        route = config.routes[0]
        source = readers.Source(io.BytesIO(text.encode()))
        rows = csv_rows.CsvRows(
            readers.TextLines(source, route.reader, True, crlf=True), route.reader
        )
        got = [(row, n) for batch, origins in rows for row, n in zip(batch, origins, strict=True)]
    assert rows.header == expected[0]
    assert [row for row, _ in got] == expected[1:]
    ends = [
        1 + sum(v.count("\n") for r in expected[: i + 1] for v in r) + i
        for i in range(len(expected))
    ]
    assert [n for _, n in got] == ends[1:]
