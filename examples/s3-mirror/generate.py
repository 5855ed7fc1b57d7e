"""Sample inputs for the S3 mirror recipe: a tree of files as people drop them — nested
folders, photos and archives (binary), logs (some gzipped), documents, names with spaces
and non-ASCII letters, an empty file, and one large file (multipart upload).

    python examples/s3-mirror/generate.py --out watch_dir/unprocessed [--large-mb 40]

Prints one line per file (its sha256 and relative path), which is what the bucket must
hold afterwards.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import random
from pathlib import Path


def _log(rng: random.Random, lines: int) -> bytes:
    levels = ("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG")
    return "".join(
        f"2026-11-30 {h:02d}:{m:02d}:{s:02d} [{rng.choice(levels)}] sync: batch {i} ok\n"
        for i, (h, m, s) in enumerate(
            (rng.randrange(24), rng.randrange(60), rng.randrange(60)) for _ in range(lines)
        )
    ).encode()


def tree(rng: random.Random, large_mb: int) -> dict[str, bytes]:
    """Relative path -> content."""
    files: dict[str, bytes] = {}
    for i in range(12):
        files[f"photos/2026/11/IMG_{4100 + i}.jpg"] = b"\xff\xd8\xff\xe0" + rng.randbytes(
            rng.randint(20_000, 300_000)
        )
    for host in ("web01", "web02", "db01"):
        files[f"logs/{host}/{host}_20261130.log"] = _log(rng, rng.randint(200, 3000))
        files[f"logs/{host}/{host}_20261129.log.gz"] = gzip.compress(_log(rng, 5000), mtime=0)
    files["docs/Quarterly report Q3.pdf"] = b"%PDF-1.7\n" + rng.randbytes(150_000)
    files["docs/Überblick – Ausgaben.csv"] = b"item,amount\nrent,1200\npower,89.5\n"
    files["docs/notes/todo.txt"] = b"- renew certificate\n- rotate keys\n"
    files["docs/notes/empty.txt"] = b""
    files["backups/site-2026-11-30.tar"] = rng.randbytes(large_mb << 20)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("watch_dir/unprocessed"))
    p.add_argument("--large-mb", type=int, default=40, help="size of the large file (MiB)")
    p.add_argument("--seed", type=int, default=2026)
    a = p.parse_args(argv)
    for rel, data in tree(random.Random(a.seed), a.large_mb).items():
        dest = a.out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")  # hidden until complete: never half-claimed
        tmp.write_bytes(data)
        tmp.rename(dest)
        print(hashlib.sha256(data).hexdigest(), rel)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
