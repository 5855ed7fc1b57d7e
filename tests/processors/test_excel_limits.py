"""Workbooks that expand: small files, written by hand, that would make calamine allocate
gigabytes (or abort) fail with `WorkbookTooLarge` before calamine reads them, naming the
limit; ordinary workbooks, and one at a limit, still read. Each bomb here killed a worker
(SIGABRT) or took gigabytes before the checks existed."""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path
from typing import Any

import pytest

from processors.base import ProcessorError
from processors.excel import column_letters
from tests.processors import workbooks

A1 = b'<row r="1"><c r="A1"><v>1</v></c></row>'


def _excel(**reader: Any) -> dict[str, Any]:
    return {"routes": [{"start": "rows", "reader": {"type": "excel", **reader}}],
            "outputs": {"rows": {}}}  # fmt: skip


def _too_large(run: Any, path: Path, **reader: Any) -> str:
    with pytest.raises(ProcessorError) as info:
        run(_excel(**reader), path.read_bytes(), path.name)
    assert info.value.error_type == "WorkbookTooLarge", info.value
    return str(info.value)


def test_two_far_cells_fail_before_calamine_builds_their_grid(run: Any, tmp_path: Path) -> None:
    book = workbooks.far_cell(tmp_path / "far.xlsx")  # A1 and ZZ1000000: 22 GB in calamine
    assert book.stat().st_size < 2000
    message = _too_large(run, book)
    assert "spans A1:ZZ1000000, 702,000,000 cells: more than 10,000,000" in message
    assert "(reader.max_sheet_cells;" in message


@pytest.mark.parametrize(
    "cells",
    [
        # a prefix on the tags, single quotes, spaces: what calamine reads all the same
        b"<x:row r='1'><x:c r='A1'><x:v>1</x:v></x:c></x:row>"
        b"<x:row r='5000'><x:c r = 'ZZ5000'><x:v>2</x:v></x:c></x:row>",
        # no `r` on the cells: calamine counts rows and cells
        b'<row r="1"><c><v>1</v></c></row><row r="5000">'
        + b"<c><v>1</v></c>" * 701
        + b"<c><v>2</v></c></row>",
        # rows without `r` either: each one ends a row
        A1 + b"<row></row>" * 4998 + b"<row>" + b"<c><v>1</v></c>" * 702 + b"</row>",
        # the far cell in the middle, lowercase
        A1 + b'<row r="2"><c r="zz5000"><v>2</v></c></row><row r="3"><c r="A3"><v>3</v></c></row>',
    ],
    ids=["prefixed", "no-cell-refs", "no-refs-at-all", "lowercase"],
)
def test_a_far_cell_is_found_however_the_sheet_is_written(
    run: Any, tmp_path: Path, cells: bytes
) -> None:
    book = workbooks.xlsx_parts(tmp_path / "odd.xlsx", {"S": [cells]})
    message = _too_large(run, book, max_sheet_cells=3_000_000)
    assert "spans A1:ZZ5000, 3,510,000 cells" in message


def test_a_sheet_at_the_cell_limit_reads(run: Any, tmp_path: Path) -> None:
    cells = A1 + b'<row r="50"><c r="J50"><v>2</v></c></row>'  # A1:J50, 500 cells
    book = workbooks.xlsx_parts(tmp_path / "edge.xlsx", {"S": [cells]})
    summary, _ = run(_excel(max_sheet_cells=500, header=False), book.read_bytes(), "edge.xlsx")
    assert summary["sheets"] == {"S": 2}
    assert "A1:J50, 500 cells: more than 499" in _too_large(run, book, max_sheet_cells=499)


def test_a_declared_dimension_does_not_count_but_cells_do(run: Any, tmp_path: Path) -> None:
    # calamine takes the grid from the cells; a <dimension> that lies costs nothing
    dim = b'<dimension ref="A1:XFD1048576"/>'
    book = workbooks.xlsx_parts(tmp_path / "dim.xlsx", {"S": [dim + A1]})
    # (the hand-written sheet has <dimension> inside <sheetData>: calamine skips it there)
    summary, _ = run(_excel(header=False), book.read_bytes(), "dim.xlsx")
    assert summary["sheets"] == {"S": 1}


def test_a_shared_string_that_unpacks_a_thousand_fold_fails_as_it_unpacks(
    run: Any, tmp_path: Path
) -> None:
    book = workbooks.long_shared_string(tmp_path / "long.xlsx", 64)  # 64 MiB in ~65 KB
    message = _too_large(run, book)
    assert "unpacks to more than 100 times its" in message
    assert "(reader.max_unpacked_ratio), at xl/sharedStrings.xml" in message
    message = _too_large(run, book, max_unpacked_ratio=None, max_unpacked_mb=32)
    assert "unpacks to more than 32 MiB (reader.max_unpacked_mb)" in message
    message = _too_large(run, book, max_unpacked_ratio=None, max_text_mb=16)
    assert "xl/sharedStrings.xml holds more than 16 MiB of text (reader.max_text_mb" in message


def test_millions_of_tiny_shared_strings_count_what_each_costs(run: Any, tmp_path: Path) -> None:
    book = workbooks.many_shared_strings(tmp_path / "many.xlsx", 400_000)  # ~20 MB in calamine
    message = _too_large(run, book, max_unpacked_ratio=None, max_text_mb=16)
    assert "holds more than 16 MiB of text" in message
    summary, _ = run(_excel(max_unpacked_ratio=None, max_text_mb=32, header=False),
                     book.read_bytes(), "many.xlsx")  # fmt: skip
    assert summary["sheets"] == {"Sheet1": 1}


def test_a_lying_unique_count_is_what_calamine_reserves(run: Any, tmp_path: Path) -> None:
    honest = tmp_path / "honest.xlsx"
    _with_unique_count(honest, 1)
    assert run(_excel(header=False), honest.read_bytes(), "u.xlsx")[0]["sheets"] == {"S": 1}
    lying = tmp_path / "lying.xlsx"
    _with_unique_count(lying, 2_000_000_000)  # calamine reserves 48 GB for them
    assert "holds more than 256 MiB of text" in _too_large(run, lying)


def _with_unique_count(path: Path, count: int) -> None:
    workbooks.xlsx_parts(path, {"S": [A1]}, [b"<si><t>a</t></si>"])
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["xl/sharedStrings.xml"] = parts["xl/sharedStrings.xml"].replace(
        b"<sst ", b'<sst uniqueCount="%d" ' % count
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_one_shared_string_shown_in_many_cells_counts_once_a_cell(run: Any, tmp_path: Path) -> None:
    # calamine copies a shared string into each cell that shows it: 1 MiB x 40 cells
    shared = [b"<si><t>" + b"x" * (1 << 20) + b"</t></si>"]
    cells = (
        b'<row r="1">'
        + b"".join(b'<c r="%s1" t="s"><v>0</v></c>' % column_letters(i).encode() for i in range(40))
        + b"</row>"
    )
    book = workbooks.xlsx_parts(tmp_path / "copies.xlsx", {"S": [cells]}, shared)
    message = _too_large(run, book, max_unpacked_ratio=None, max_text_mb=32)
    assert "xl/worksheets/sheet1.xml holds more than 32 MiB of text" in message
    summary, _ = run(_excel(max_unpacked_ratio=None, max_text_mb=48, header=False),
                     book.read_bytes(), "copies.xlsx")  # fmt: skip
    assert summary["sheets"] == {"S": 1}


def test_an_entity_bomb_is_not_expanded(run: Any, tmp_path: Path) -> None:
    lol = b"".join(b'<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">'
                   % ((i,) + (i - 1,) * 10) for i in range(1, 10))  # fmt: skip
    shared = [b"<si><t>&l9;</t></si>"]
    book = workbooks.xlsx_parts(tmp_path / "lol.xlsx", {"S": [A1]}, shared)
    with zipfile.ZipFile(book) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    sst = parts["xl/sharedStrings.xml"]
    doctype = b'<!DOCTYPE sst [<!ENTITY l0 "lol">' + lol + b"]>"
    parts["xl/sharedStrings.xml"] = sst.replace(b"?><sst", b"?>" + doctype + b"<sst", 1)
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    with pytest.raises(ProcessorError) as info:
        run(_excel(header=False), book.read_bytes(), "lol.xlsx")
    assert info.value.error_type == "BadWorkbook"  # calamine knows no such entity


def test_ods_repeats_count_as_the_cells_they_make(run: Any, tmp_path: Path) -> None:
    row = b"<table:table-row>" + workbooks.ods_cell("x", 16384) + b"</table:table-row>"
    book = workbooks.ods_parts(tmp_path / "wide.ods", row * 3000)  # 2.6 KB, 49 M cells
    message = _too_large(run, book)
    assert "sheets span 98,304,000 cells together (the largest, 'Sheet1', A1:XFD3000)" in message
    repeated = (b'<table:table-row table:number-rows-repeated="1000">'
                + workbooks.ods_cell("x", 100) + b"</table:table-row>")  # fmt: skip
    book = workbooks.ods_parts(tmp_path / "rows.ods", repeated)
    assert "(the largest, 'Sheet1', A1:CV1000)" in _too_large(run, book, max_sheet_cells=50_000)


def test_ods_spaces_count_as_text(run: Any, tmp_path: Path) -> None:
    spaces = b'<text:s text:c="1000000000"/>'
    cell = (b'<table:table-row><table:table-cell office:value-type="string"><text:p>'
            b"%s</text:p></table:table-cell></table:table-row>" % spaces)  # fmt: skip
    book = workbooks.ods_parts(tmp_path / "spaces.ods", cell)  # 767 bytes, 1 GB in calamine
    assert "content.xml holds more than 256 MiB of text" in _too_large(run, book)


def test_an_ordinary_ods_still_reads(run: Any, tmp_path: Path) -> None:
    rows = (
        b"<table:table-row>" + workbooks.ods_cell("name") + b"</table:table-row>"
        b"<table:table-row>" + workbooks.ods_cell("Ada") + b"</table:table-row>"
        b'<table:table-row table:number-rows-repeated="1048570"><table:table-cell '
        b'table:number-columns-repeated="1024"/></table:table-row>'
    )  # LibreOffice's tail
    book = workbooks.ods_parts(tmp_path / "ok.ods", rows)
    _, out = run(_excel(sheet_field=None, row_field=None), book.read_bytes(), "ok.ods")
    assert out["rows"] == '{"name":"Ada"}\n'


def test_an_xls_whose_dimensions_lie_fails_before_calamine_reserves_them(
    run: Any, tmp_path: Path
) -> None:
    book = workbooks.xls_lying(tmp_path / "lying.xls", 0xFFFFFFF0, 0xFF)
    message = _too_large(run, book)
    assert "(reader.max_sheet_cells; calamine reads every sheet of an .xls" in message


def test_an_xls_far_cell_counts_its_grid(run: Any, tmp_path: Path) -> None:
    book = workbooks.xls(tmp_path / "far.xls", {"S": [["a"], *itertools.repeat([], 9998), ["z"]]})
    summary, _ = run(_excel(header=False), book.read_bytes(), "far.xls")
    assert summary["sheets"] == {"S": 2}
    assert "(the largest, 'S', A1:A10000)" in _too_large(run, book, max_sheet_cells=9_999)
