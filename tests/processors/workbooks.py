"""Real workbooks for the tests, written by the libraries people make them with: xlsxwriter
(.xlsx), xlwt (.xls), odfpy (.ods), msoffcrypto-tool (a password-protected .xlsx)."""

from __future__ import annotations

import datetime as dt
import io
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
