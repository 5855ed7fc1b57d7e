"""Print a result workbook of the voters recipe: each sheet, its row count, its first rows.

python -m examples.voters.show build/recipes/voters/results/ward_1_central.xlsx.xlsx
"""

from __future__ import annotations

import sys

import python_calamine as calamine


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # calamine reads every number as a float
    return "" if value is None else str(value)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: show.py WORKBOOK…", file=sys.stderr)
        return 2
    for path in argv[1:]:
        book = calamine.CalamineWorkbook.from_path(path)
        print(path)
        for name in book.sheet_names:
            rows = book.get_sheet_by_name(name).to_python()
            print(f"  {name}: {max(len(rows) - 1, 0)} row(s)")
            for row in rows[:3]:
                print("    " + " | ".join(_text(v) for v in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
