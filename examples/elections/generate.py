"""Sample inputs for the elections recipe: `constituency_<id>_<YYYYMMDD>.csv` files of
smart-contract vote transactions, mostly valid, with every kind of invalid row the
pipeline must catch, over several constituencies, one of them large.

    python -m examples.elections.generate --out watch_dir/unprocessed [--manifest FILE]

The manifest (JSON) says what a correct run must store: per file the valid row count and
each invalid row's line and kind, and the votes per constituency and candidate.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HEADER = ["tx_hash", "block_number", "timestamp", "contract", "sender", "candidate", "votes",
          "gas_used"]  # fmt: skip
CANDIDATES = ("ALVAREZ", "BANDA", "CHEN", "DIALLO", "EKSTROM")
# Each kind of invalid row: how to spoil a valid one.
SPOILERS: dict[str, Any] = {
    "missing_candidate": lambda r, _: r.__setitem__(5, ""),
    "votes_not_a_number": lambda r, _: r.__setitem__(6, "twelve"),
    "votes_out_of_range": lambda r, rng: r.__setitem__(6, str(rng.choice([0, -3, 25_000]))),
    "bad_tx_hash": lambda r, _: r.__setitem__(0, "0x" + "zz" * 32),
    "bad_sender": lambda r, _: r.__setitem__(4, "0x1234"),
    "block_below_1": lambda r, _: r.__setitem__(1, "0"),
    "timestamp_other_day": lambda r, _: r.__setitem__(2, "2019-01-01T00:00:00+00:00"),
    "bad_timestamp": lambda r, _: r.__setitem__(2, "yesterday"),
    "extra_column": lambda r, _: r.append("surplus"),
}


def _hex(rng: random.Random, digits: int) -> str:
    return f"0x{rng.getrandbits(digits * 4):0{digits}x}"


def write_file(
    path: Path, constituency: int, day: date, rows: int, invalid_share: float, rng: random.Random
) -> dict[str, Any]:
    """One file; what it should give (valid rows, invalid lines by kind, votes)."""
    contract = _hex(rng, 40)
    block = 18_000_000 + rng.randrange(1_000_000)
    start = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
    votes: Counter[str] = Counter()
    invalid: dict[int, str] = {}
    last_tx = None
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(rows):
            line = i + 2  # the header is line 1
            block += rng.randrange(1, 4)
            ts = start + timedelta(seconds=i * 57_600 // max(rows, 1))
            votes_cast, gas = rng.randint(1, 450), rng.randint(21_000, 90_000)
            row = [_hex(rng, 64), str(block), ts.isoformat(), contract, _hex(rng, 40),
                   rng.choice(CANDIDATES), str(votes_cast), str(gas)]  # fmt: skip
            if i > 0 and rng.random() < invalid_share:
                kind = rng.choice([*SPOILERS, "repeated_tx_hash"])
                if kind == "repeated_tx_hash":
                    row[0] = last_tx
                else:
                    SPOILERS[kind](row, rng)
                invalid[line] = kind
            else:
                votes[row[5]] += int(row[6])
                last_tx = row[0]
            out.writerow(row)
    return {"constituency": constituency, "valid": rows - len(invalid), "invalid": invalid,
            "votes": dict(votes)}  # fmt: skip


def generate(
    out: Path, constituencies: int, rows: int, large_rows: int, seed: int, day: date
) -> dict[str, Any]:
    """Two days of files per constituency (the first constituency's first day is the large
    one); returns the manifest."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    totals: dict[str, Counter[str]] = {}
    for n in range(constituencies):
        cid = 101 + n
        for d in range(2):
            when = day + timedelta(days=d)
            name = f"constituency_{cid}_{when:%Y%m%d}.csv"
            size = large_rows if (n, d) == (0, 0) else rng.randint(rows // 2, rows)
            files[name] = got = write_file(out / name, cid, when, size, 0.03, rng)
            totals.setdefault(str(cid), Counter()).update(got["votes"])
    return {"files": files, "totals": {c: dict(v) for c, v in totals.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("watch_dir/unprocessed"))
    p.add_argument("--constituencies", type=int, default=4)
    p.add_argument("--rows", type=int, default=2_000, help="rows of a normal file (at most)")
    p.add_argument("--large-rows", type=int, default=200_000, help="rows of the large file")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--date", type=date.fromisoformat, default=date(2026, 11, 30))
    p.add_argument("--manifest", type=Path, help="write what a correct run stores here")
    a = p.parse_args(argv)
    manifest = generate(a.out, a.constituencies, a.rows, a.large_rows, a.seed, a.date)
    if a.manifest:
        a.manifest.write_text(json.dumps(manifest, indent=1))
    bad = sum(len(f["invalid"]) for f in manifest["files"].values())
    good = sum(f["valid"] for f in manifest["files"].values())
    print(f"wrote {len(manifest['files'])} files to {a.out}: {good} valid rows, {bad} invalid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
