"""dashboard.lines: a file's lines a page at a time, as `sed -n` numbers them, in bounded
memory and time: any page, jump or filter matches a plain reading of the whole file, a
request that runs out of budget goes on where it stopped, and a 200 MB file (or a single
5 MB line) is paged through holding a few MB."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.lines import MAX_LINE, Busy, Indexes, NotRegular


def reference(data: bytes, start: int, count: int, query: str, long: int) -> tuple[list[int], int]:
    """The numbers of the lines a page holds, read the plain way, and the line count."""
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()
    found = [i for i, line in enumerate(lines, 1) if i >= start and (
        not query or query.encode().lower() in line[:long].lower())]  # fmt: skip
    return found[:count], len(lines)


def read_all(index: Indexes, path: Path, start: int, count: int, query: str) -> list[int]:
    """Ask for a page, and again from `next` while the budget cut it short."""
    got: list[int] = []
    line: int | None = start
    for _ in range(10_000):
        if line is None or len(got) >= count:
            return got
        page = index.page(path, line, count - len(got), query)
        got += [ln.number for ln in page.lines]
        assert page.partial or len(got) >= count or page.next is None
        line = page.next
    raise AssertionError("no progress")


LINE = st.binary(max_size=60).map(
    lambda b: b.replace(b"\n", b"a").replace(b"\0", b"z")
)  # text: no NUL


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(LINE, st.sampled_from([b"", b"x\r", b"needle", b"NeEdLe z"])), max_size=40
    ),
    newline_at_end=st.booleans(),
    chunk=st.sampled_from([1, 3, 16, 64]),
    long=st.sampled_from([5, 40, 1 << 20]),
    budget=st.sampled_from([1, 50, 1 << 30]),
    asks=st.lists(
        st.tuples(
            st.integers(1, 45), st.integers(1, 6), st.sampled_from(["", "needle", "a", "zz"])
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_pages_match_a_plain_reading(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    newline_at_end: bool,
    chunk: int,
    long: int,
    budget: int,
    asks: list[tuple[int, int, str]],
) -> None:
    path = tmp_path_factory.mktemp("lines") / "f.txt"
    data = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    path.write_bytes(data)
    index = Indexes(budget=budget, chunk=chunk, long=long)  # one index across the asks
    for start, count, query in asks:
        want, total = reference(data, start, count, query, long)
        assert read_all(index, path, start, count, query) == want
        page = index.page(path, start, count, query)
        if page.total is not None:
            assert page.total == total
        for ln in page.lines:
            raw = data.split(b"\n")[ln.number - 1]
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            if len(raw) <= long:
                assert (ln.text, ln.more, ln.more_known) == (
                    raw.decode("utf-8", "backslashreplace"),
                    0,
                    True,
                )


def test_a_200_mb_file_is_paged_in_a_few_mb(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = b"2024-01-05 10:00:01 [INFO] API: request handled in 5 ms for user 1234567\n"
    block = line * 10_000
    last = b"the last line, with a needle\n"
    with path.open("wb") as f:
        for _ in range((200 << 20) // len(block) + 1):
            f.write(block)
        f.write(last)
    total = (path.stat().st_size - len(last)) // len(line) + 1
    index = Indexes(budget=64 << 20)
    tracemalloc.start()
    try:
        first = index.page(path, 1, 50)
        jump = index.page(path, total, 5)  # out of budget: it says so, and goes on
        assert jump.partial and jump.next == total and not jump.lines
        for _ in range(10):
            if not jump.partial:
                break
            jump = index.page(path, total, 5)
        found = index.page(path, 1, 5, "NEEDLE")
        for _ in range(10):
            if not found.partial:
                break
            assert found.next is not None
            found = index.page(path, found.next, 5, "NEEDLE")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [ln.number for ln in first.lines] == list(range(1, 51))
    assert [ln.text for ln in jump.lines] == ["the last line, with a needle"]
    assert jump.lines[0].number == total and jump.total == total and jump.next is None
    assert [(ln.number, ln.text) for ln in found.lines] == [(total, "the last line, with a needle")]
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MB held while paging a 200 MB file"
    # the index keeps the way: the last line again is one seek
    again = index.page(path, total - 1, 2)
    assert [ln.number for ln in again.lines] == [total - 1, total] and not again.partial


def test_a_single_5_mb_line_is_shown_cut_and_crossed_in_steps(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_bytes(b"x" * (5 << 20) + b"\nsecond\n")
    index = Indexes(budget=1)  # the smallest budget: each request still moves on
    page = index.page(path, 1, 1)
    assert page.lines[0].text == "x" * MAX_LINE and page.lines[0].more > 0
    second = None
    for _ in range(20):
        second = index.page(path, 2, 1)
        if not second.partial:
            break
    assert second is not None and [ln.text for ln in second.lines] == ["second"]
    assert second.total is None or second.total == 2


def test_text_that_is_not_utf8_or_has_control_characters_is_shown_as_text(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"caf\xe9 \x1b[31mred\r\n\xff\xfe\n<b>bold</b>\n")
    lines = Indexes().page(path, 1, 10).lines
    assert [ln.text for ln in lines] == ["caf\\xe9 \x1b[31mred", "\\xff\\xfe", "<b>bold</b>"]


def test_binary_files_and_fifos_are_not_read_as_lines(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"PK\x03\x04\x00\x00" + os.urandom(1000))
    page = Indexes().page(blob, 1, 10)
    assert page.binary and page.lines == []
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotRegular):  # opened without blocking, refused, never read
        Indexes().page(fifo, 1, 10)


def test_a_replaced_file_gets_a_new_index(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"".join(b"old %d\n" % i for i in range(1, 1001)))
    index = Indexes(chunk=64)
    assert index.page(path, 900, 1).lines[0].text == "old 900"
    tmp = tmp_path / "f.new"
    tmp.write_bytes(b"".join(b"new line %d\n" % i for i in range(1, 1001)))
    tmp.rename(path)  # as results are replaced: a new inode
    assert index.page(path, 900, 1).lines[0].text == "new line 900"


def test_requests_past_the_reading_slots_wait_then_give_up(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"one\ntwo\n")
    index = Indexes(scans=1, wait_s=0.05)
    with index.slot(), pytest.raises(Busy):  # another request reading
        index.page(path, 1, 1)
    assert [ln.text for ln in index.page(path, 1, 2).lines] == ["one", "two"]
