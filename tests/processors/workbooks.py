"""Real workbooks for the tests, written by the libraries people make them with: xlsxwriter
(.xlsx), xlwt (.xls), odfpy (.ods), msoffcrypto-tool (a password-protected .xlsx)."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import xlsxwriter

Sheets = dict[str, list[list[Any]]]  # sheet name -> rows of cells (None: an empty cell)

PEOPLE: Sheets = {
    "People": [
        ["id", "name", "score", "joined", "active", "note"],
        [1, "Ada", 9.5, dt.datetime(2024, 5, 6, 7, 8, 9), True, None],
        [2, "Bob", 7, dt.date(2023, 1, 2), False, "late"],
    ],
    "Wards": [["ward", "voters"], [12, 3400]],
}


def xlsx(path: Path, sheets: Sheets = PEOPLE) -> Path:
    """Write `sheets` as an .xlsx; dates get a date format (as Excel users see them)."""
    wb = xlsxwriter.Workbook(str(path))
    dates = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.date):
                    ws.write_datetime(r, c, value, dates)
                elif value is not None:
                    ws.write(r, c, value)
    wb.close()
    return path


def xls(path: Path, sheets: Sheets = PEOPLE) -> Path:
    import xlwt

    wb = xlwt.Workbook()
    dates = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm:ss")
    for name, rows in sheets.items():
        ws = wb.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.date):
                    ws.write(r, c, value, dates)
                elif value is not None:
                    ws.write(r, c, value)
    wb.save(str(path))
    return path


def ods(path: Path, rows: list[list[Any]]) -> Path:
    """A one-sheet .ods ("Sheet1") of strings and numbers."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Sheet1")
    for row in rows:
        tr = TableRow()
        for value in row:
            if isinstance(value, int | float):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def encrypted(path: Path, source: Path, password: str = "secret") -> Path:
    """`source` (an .xlsx) encrypted with a password, as Excel's "Encrypt with password"."""
    from msoffcrypto.format.ooxml import OOXMLFile

    with source.open("rb") as f:
        out = io.BytesIO()
        OOXMLFile(f).encrypt(password, out)
    path.write_bytes(out.getvalue())
    return path


# -- bombs: small files that expand, written part by part (never held whole) --------------

Chunks = Iterable[bytes]
_CT = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
       b'/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
       b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       b'relationships+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
       b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>%s</Types>')  # fmt: skip
_SHEET_CT = (b'<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.'
             b'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')  # fmt: skip
_SST_CT = (b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
           b'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')  # fmt: skip
_RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
         b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
         b'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
         b'Target="xl/workbook.xml"/></Relationships>')  # fmt: skip
_REL = (b'<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/%s" Target="%s"/>')  # fmt: skip
_MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def xlsx_parts(path: Path, sheets: dict[str, Chunks], shared: Chunks | None = None,
                level: int = 9) -> Path:  # fmt: skip
    """An .xlsx written by hand: each sheet's `<sheetData>` content and the shared strings'
    `<sst>` content as chunks, streamed into the zip (deflated), so a part that unpacks to
    gigabytes is written without being held (`level`: the deflate level)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        overrides = b"".join(_SHEET_CT % (i + 1) for i in range(len(sheets)))
        z.writestr("[Content_Types].xml", _CT % (overrides + (_SST_CT if shared else b"")))
        z.writestr("_rels/.rels", _RELS)
        rels = [_REL % (i + 1, b"worksheet", b"worksheets/sheet%d.xml" % (i + 1))
                for i in range(len(sheets))]  # fmt: skip
        if shared is not None:
            rels.append(_REL % (len(sheets) + 1, b"sharedStrings", b"sharedStrings.xml"))
        z.writestr("xl/_rels/workbook.xml.rels",
                   b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                   b'openxmlformats.org/package/2006/relationships">%s</Relationships>'
                   % b"".join(rels))  # fmt: skip
        entries = b"".join(
            b'<sheet name="%s" sheetId="%d" r:id="rId%d"/>' % (name.encode(), i + 1, i + 1)
            for i, name in enumerate(sheets)
        )
        z.writestr("xl/workbook.xml",
                   b'<?xml version="1.0" encoding="UTF-8"?><workbook %s xmlns:r="http://schemas.'
                   b'openxmlformats.org/officeDocument/2006/relationships"><sheets>%s</sheets>'
                   b"</workbook>" % (_MAIN, entries))  # fmt: skip
        for i, chunks in enumerate(sheets.values()):
            _stream(z, f"xl/worksheets/sheet{i + 1}.xml",
                    [b'<?xml version="1.0" encoding="UTF-8"?><worksheet %s><sheetData>' % _MAIN],
                    chunks, [b"</sheetData></worksheet>"])  # fmt: skip
        if shared is not None:
            _stream(z, "xl/sharedStrings.xml",
                    [b'<?xml version="1.0" encoding="UTF-8"?><sst %s>' % _MAIN], shared,
                    [b"</sst>"])  # fmt: skip
    return path


def _stream(z: zipfile.ZipFile, name: str, *parts: Chunks) -> None:
    with z.open(name, "w", force_zip64=True) as part:
        for chunks in parts:
            for chunk in chunks:
                part.write(chunk)


def far_cell(path: Path, ref: str = "ZZ1000000") -> Path:
    """Two cells, `A1` and `ref`, and no `<dimension>`: calamine's grid spans them both."""
    row = int(ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    cells = (b'<row r="1"><c r="A1"><v>1</v></c></row>'
             b'<row r="%d"><c r="%s"><v>2</v></c></row>' % (row, ref.encode()))  # fmt: skip
    return xlsx_parts(path, {"Sheet1": [cells]})


def long_shared_string(path: Path, mb: int) -> Path:
    """One shared string of `mb` MiB, shown in cell A1."""
    piece = b"x" * (1 << 20)
    text = itertools.chain([b"<si><t>"], itertools.repeat(piece, mb), [b"</t></si>"])
    return xlsx_parts(path, {"Sheet1": [b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>']}, text)


def many_shared_strings(path: Path, count: int) -> Path:
    """`count` one-letter shared strings, A1 showing the first."""
    batch = 100_000
    strings = itertools.repeat(b"<si><t>a</t></si>" * batch, count // batch)
    rest = [b"<si><t>a</t></si>" * (count % batch)]
    a1 = b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    return xlsx_parts(path, {"Sheet1": [a1]}, itertools.chain(strings, rest))


def ods_parts(path: Path, table: bytes) -> Path:
    """An .ods of one table ("Sheet1") whose rows are `table`, written by hand."""
    ns = (b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          b'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          b'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        mimetype = "application/vnd.oasis.opendocument.spreadsheet"
        z.writestr(zipfile.ZipInfo("mimetype"), mimetype)
        z.writestr("META-INF/manifest.xml",
                   b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="'
                   b'urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry '
                   b'manifest:full-path="/" manifest:media-type="application/vnd.oasis.'
                   b'opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="'
                   b'content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
                   )  # fmt: skip
        z.writestr("content.xml",
                   b'<?xml version="1.0" encoding="UTF-8"?><office:document-content %s>'
                   b'<office:body><office:spreadsheet><table:table table:name="Sheet1">%s'
                   b"</table:table></office:spreadsheet></office:body></office:document-content>"
                   % (ns, table))  # fmt: skip
    return path


def ods_cell(text: str, columns: int = 1) -> bytes:
    return (b'<table:table-cell table:number-columns-repeated="%d" office:value-type="string">'
            b"<text:p>%s</text:p></table:table-cell>" % (columns, text.encode()))  # fmt: skip


def xls_lying(path: Path, rows: int, cols: int) -> Path:
    """A real .xls (xlwt) whose sheet's DIMENSIONS record claims `rows` by `cols` cells."""
    book = xls(path, {"S": [["a", 1]]}).read_bytes()
    at = book.index(b"\x00\x02\x0e\x00")  # DIMENSIONS, 14 bytes: rows as u32
    patched = book[: at + 4] + struct.pack("<IIHH", 0, rows, 0, cols) + book[at + 16 :]
    path.write_bytes(patched)
    return path


def numbers_xlsx(path: Path, rows: int) -> Path:
    """A one-sheet .xlsx of a header and `rows` rows of six numbers, for tests of size
    alone: calamine holds a sheet whole (about 0.8 KB of a worker's heap per row here)."""
    cols = [c.encode() for c in "ABCDEF"]
    head = b'<row r="1">%s</row>' % b"".join(
        b'<c r="%s1" t="inlineStr"><is><t>%s</t></is></c>' % (c, c) for c in cols
    )

    def body() -> Chunks:
        yield head
        for start in range(2, rows + 2, 1000):
            yield b"".join(
                b'<row r="%d">%s</row>' % (i, b"".join(b'<c r="%s%d"><v>%d</v></c>' % (c, i, i)
                                                       for c in cols))
                for i in range(start, min(start + 1000, rows + 2))
            )  # fmt: skip

    return xlsx_parts(path, {"S": body()}, level=1)  # level 9: half a minute for 200,000
