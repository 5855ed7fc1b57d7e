"""Sample inputs for the voters recipe: `ward_<n>_<district>.xlsx` workbooks listing people
by ID number, and the voters' roll the stand-in API answers from.

    python -m examples.voters.generate --out watch_dir/unprocessed --roll roll.json

Most people are registered in the ward of their file, some in another ward, some not at
all; a few IDs are mistyped (no valid check digit), a few cells are empty, a few people
are listed twice, and the roll marks a few IDs whose lookups always fail (the API answers
503). One ward's file is large. `--manifest` writes each file's expected category per row.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import xlsxwriter

from examples.voters.api import luhn_ok

SURNAMES = ("Dlamini", "Naidoo", "van der Merwe", "Mokoena", "Smith", "Botha", "Khumalo",
            "Pillay", "Nkosi", "Jacobs", "Ndlovu", "Le Roux")  # fmt: skip
FIRST = ("Thandi", "Sipho", "Anika", "Pieter", "Lerato", "Mohammed", "Zanele", "Johan",
         "Priya", "Bongani", "Nomsa", "Riaan")  # fmt: skip
DISTRICTS = ("central", "riverside", "hillcrest", "harbour", "northgate")
HEADER = ("id_number", "surname", "first_names", "date_of_birth")


def id_number(rng: random.Random, born: date) -> str:
    """A 13-digit ID: birth date, serial, citizenship, 8, and a Luhn check digit."""
    body = f"{born:%y%m%d}{rng.randrange(10_000):04d}{rng.choice('01')}8"
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def _person(rng: random.Random) -> tuple[str, str, str, date]:
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 66))
    return id_number(rng, born), rng.choice(SURNAMES), rng.choice(FIRST), born


def write_ward(
    path: Path, ward: int, wards: int, rows: int, rng: random.Random, roll: dict[str, Any]
) -> list[str]:
    """One workbook; the expected category of each row, in order."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Roll check")
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HEADER)
    expected: list[str] = []
    listed: list[tuple[str, str, str, date]] = []
    for r in range(1, rows + 1):
        kind = rng.choices(
            ["in_ward", "elsewhere", "not_registered", "mistyped", "empty", "unavailable",
             "twice"], [70, 12, 9, 3, 1, 2, 3])[0]  # fmt: skip
        if kind == "twice" and listed:
            pid, surname, first, born = rng.choice(listed)
            kind = expected[listed.index((pid, surname, first, born))]
        else:
            kind = "in_ward" if kind == "twice" else kind
            pid, surname, first, born = _person(rng)
            if kind in ("in_ward", "elsewhere", "unavailable"):
                other = rng.choice([w for w in range(1, wards + 1) if w != ward] or [ward])
                home = ward if kind != "elsewhere" else other
                roll["voters"][pid] = {
                    "ward": home,
                    "polling_station": f"PS{home:03d}-{rng.randrange(1, 9)}",
                }
            if kind == "unavailable":
                roll["unavailable"].append(pid)
            if kind == "mistyped":
                pid = pid[:-1] + str((int(pid[-1]) + 1) % 10)
            if kind == "empty":
                pid = ""
        category = {"mistyped": "lookup_failed", "empty": "lookup_failed",
                    "unavailable": "lookup_failed"}.get(kind, kind)  # fmt: skip
        listed.append((pid, surname, first, born))
        expected.append(category)
        if pid:
            sheet.write_string(r, 0, pid)  # text: an ID is no number (leading zeros)
        sheet.write_string(r, 1, surname)
        sheet.write_string(r, 2, first)
        sheet.write_datetime(r, 3, born, dates)
    book.close()
    return expected


def generate(out: Path, wards: int, rows: int, large_rows: int, seed: int) -> dict[str, Any]:
    """The workbooks in `out`; returns {"roll": …, "files": {name: [category per row]}}."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    roll: dict[str, Any] = {"voters": {}, "unavailable": []}
    files = {}
    for ward in range(1, wards + 1):
        name = f"ward_{ward}_{DISTRICTS[(ward - 1) % len(DISTRICTS)]}.xlsx"
        tmp = out / f".{name}.part"  # hidden until complete: never claimed half-written
        size = large_rows if ward == 1 else rng.randint(rows // 2, rows)
        files[name] = write_ward(tmp, ward, wards, size, rng, roll)
        tmp.rename(out / name)
    return {"roll": roll, "files": files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("watch_dir/unprocessed"))
    p.add_argument("--roll", type=Path, required=True, help="where the API's roll goes")
    p.add_argument("--wards", type=int, default=4)
    p.add_argument("--rows", type=int, default=300, help="rows of a normal file (at most)")
    p.add_argument("--large-rows", type=int, default=2_000, help="rows of the large file")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--manifest", type=Path, help="write each row's expected category here")
    a = p.parse_args(argv)
    made = generate(a.out, a.wards, a.rows, a.large_rows, a.seed)
    a.roll.parent.mkdir(parents=True, exist_ok=True)
    a.roll.write_text(json.dumps(made["roll"]))
    if a.manifest:
        a.manifest.write_text(json.dumps(made["files"], indent=1))
    rows = sum(len(v) for v in made["files"].values())
    print(f"wrote {len(made['files'])} workbooks ({rows} rows) to {a.out}, the roll to {a.roll}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
