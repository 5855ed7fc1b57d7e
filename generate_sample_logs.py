"""Drop realistic sample logs into watch_dir/unprocessed/, so folderd has something to chew.

    python generate_sample_logs.py --count 20          # what `make sample N=20` runs
    python generate_sample_logs.py --seed 7 --date 2026-11-22 --large 0

The files look like what servers write: bracket lines (`2026-11-22 10:00:00 [ERROR] API:
msg`), pipe-delimited lines (`2026-11-22 10:00:00|WARN|DB|msg`), JSON lines, a CSV export,
gzipped logs and an Excel export (a workbook of typed cells), with levels and components
in realistic proportions, the odd stack trace and a share of malformed lines. A few are
large (several MB) to show streaming at work.

Every file is written under a hidden temporary name inside unprocessed/ (folderd never
claims hidden files), fsynced, then renamed to its final name: the daemon only ever sees
complete files. Existing files are never overwritten; a taken name gets a `-N` suffix.
With the same `--seed` and `--date` the output is byte-for-byte the same.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

HOSTS = ("web01", "web02", "api01", "api02", "db01", "worker01", "worker02", "cache01")
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
LEVEL_WEIGHTS = (12, 65, 14, 8, 1)
COMPONENTS = ("API", "DB", "AUTH", "CACHE", "WORKER", "SCHEDULER", "HTTP", "QUEUE", "MAILER")
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "mallory")
PATHS = ("/api/v1/orders", "/api/v1/users", "/api/v1/invoices", "/login", "/health", "/search")
TABLES = ("orders", "users", "invoices", "sessions", "events", "payments")
SERVICES = ("payments-gw", "geoip", "smtp-relay", "s3", "ldap")
STATE_DIRS = ("unprocessed", "underprocess", "processed", "failed")
# Each kind of file: (name suffix, writer). The plan cycles through them in this order.
KINDS = ("bracket", "pipe", "jsonl", "bracket", "csv", "gz", "xlsx")
SUFFIXES = {"bracket": ".log", "pipe": ".log", "jsonl": ".jsonl", "csv": ".csv", "gz": ".log.gz",
            "xlsx": ".xlsx"}  # fmt: skip
XLSX_ROW_BYTES = 64  # about what a row of the log sheet costs before compression


class LogFaker:
    """Makes plausible log records (time, level, component, message) from one seeded RNG."""

    def __init__(self, rng: random.Random, host: str, day: dt.date, malformed: float) -> None:
        self.rng = rng
        self.host = host
        self.malformed = malformed
        self.clock = dt.datetime.combine(day, dt.time()) + dt.timedelta(
            seconds=rng.randrange(6 * 3600)
        )

    def _tick(self) -> dt.datetime:
        self.clock += dt.timedelta(milliseconds=self.rng.randrange(1, 4000))
        return self.clock

    def record(self) -> tuple[dt.datetime, str, str, str]:
        level = self.rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
        component = self.rng.choice(COMPONENTS)
        return self._tick(), level, component, self.message(level, component)

    def message(self, level: str, component: str) -> str:
        r = self.rng
        ms = r.randrange(2, 900) if level in ("DEBUG", "INFO") else r.randrange(900, 30000)
        if component in ("API", "HTTP"):
            status = {"ERROR": 500, "CRITICAL": 503, "WARN": r.choice((404, 429, 499))}
            path = r.choice(PATHS)
            if path.startswith("/api/"):
                path += f"/{r.randrange(1, 99999)}"
            return (
                f"{r.choice(('GET', 'GET', 'POST', 'PUT', 'DELETE'))} {path}"
                f" {status.get(level, 200)} in {ms}ms request_id={r.getrandbits(64):016x}"
            )
        if component == "DB":
            table = r.choice(TABLES)
            if level == "ERROR":
                return f"deadlock detected on {table}, transaction rolled back"
            if level == "CRITICAL":
                return f"connection pool exhausted (size={r.choice((10, 20, 50))}, waiting=37)"
            return f"query on {table} took {ms}ms rows={r.randrange(0, 5000)}"
        if component == "AUTH":
            user, ip = (
                r.choice(USERS),
                f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
            )
            if level in ("WARN", "ERROR"):
                return f"login failed for user {user} from {ip}: invalid password"
            return f"user {user} logged in from {ip}"
        if component in ("WORKER", "QUEUE", "SCHEDULER"):
            job = f"job-{r.randrange(100000):05d}"
            if level in ("ERROR", "CRITICAL"):
                return f"{job} failed: Timeout after {ms}ms calling {r.choice(SERVICES)}"
            if level == "WARN":
                return f"retrying {job} (attempt {r.randrange(2, 4)}/3)"
            return f"{job} finished in {ms / 1000:.2f}s, queue depth {r.randrange(0, 400)}"
        if component == "CACHE":
            verb = "miss" if level != "INFO" or r.random() < 0.3 else "hit"
            return f"cache {verb} for key session:{r.getrandbits(32):08x}"
        if level in ("ERROR", "CRITICAL"):
            return f"could not deliver mail to {r.choice(USERS)}@example.com: 451 try again later"
        return f"sent {r.randrange(1, 40)} notification mails in {ms}ms"

    def bad_line(self, good: str) -> str:
        """A malformed line of the kinds real logs contain."""
        r = self.rng
        when = self.clock.strftime("%Y-%m-%d %H:%M:%S")
        return r.choice(
            (
                good[: r.randrange(5, max(6, len(good) // 2))],  # truncated write
                f"{when} {r.choice(COMPONENTS)} message without a level",
                "2026-13-45 25:61:00 [INFO] API: impossible timestamp",
                f"{when} [NOTICE] DB: unknown level",
                "Segmentation fault (core dumped)",
                "",
                "\t    at com.example.orders.OrderService.place(OrderService.java:214)",
            )
        )

    def maybe_bad(self, line: str) -> str:
        return self.bad_line(line) if self.rng.random() < self.malformed else line

    def traceback(self) -> list[str]:
        return [
            "Traceback (most recent call last):",
            '  File "/srv/app/handlers.py", line 88, in handle',
            "    result = service.call(payload)",
            f"TimeoutError: {self.rng.choice(SERVICES)} did not answer within 30s",
        ]


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S")


def bracket_lines(fake: LogFaker) -> Iterator[str]:
    while True:
        when, level, component, message = fake.record()
        yield fake.maybe_bad(f"{_ts(when)} [{level}] {component}: {message}")
        if level in ("ERROR", "CRITICAL") and fake.rng.random() < 0.15:
            yield from fake.traceback()


def pipe_lines(fake: LogFaker) -> Iterator[str]:
    while True:
        when, level, component, message = fake.record()
        yield fake.maybe_bad(f"{_ts(when)}|{level}|{component}|{message}")


def json_lines(fake: LogFaker) -> Iterator[str]:
    while True:
        when, level, component, message = fake.record()
        record = {
            "timestamp": when.isoformat(timespec="milliseconds") + "Z",
            "level": level,
            "component": component,
            "message": message,
            "host": fake.host,
        }
        line = json.dumps(record)
        if fake.rng.random() < fake.malformed:
            line = line[: fake.rng.randrange(10, len(line) - 1)]  # a torn JSON object
        yield line


def csv_lines(fake: LogFaker) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="")
    writer.writerow(("timestamp", "level", "component", "message"))
    yield buffer.getvalue()
    while True:
        when, level, component, message = fake.record()
        buffer.seek(0)
        buffer.truncate()
        writer.writerow((_ts(when), level, component, message))
        yield fake.maybe_bad(buffer.getvalue())


LINES: dict[str, Callable[[LogFaker], Iterator[str]]] = {
    "bracket": bracket_lines,
    "pipe": pipe_lines,
    "jsonl": json_lines,
    "csv": csv_lines,
    "gz": bracket_lines,
}


def write_workbook(out: IO[bytes], fake: LogFaker, *, count: int, min_bytes: int) -> int:
    """A workbook of log records — typed cells: the time a date, the rest text — under a
    header row; return the row count. Its bytes depend on the seed only."""
    import xlsxwriter  # a runtime requirement of folderd (workbook output)

    rows = max(count, min_bytes // XLSX_ROW_BYTES)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.set_properties({"created": dt.datetime(2026, 1, 1)})  # not now: reproducible
    when_format = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet = book.add_worksheet("Log")
    sheet.write_row(0, 0, ("timestamp", "level", "component", "message"))
    for row in range(1, rows + 1):
        when, level, component, message = fake.record()
        sheet.write_datetime(row, 0, when.replace(tzinfo=None), when_format)
        sheet.write_row(row, 1, (level, component, message))
    book.close()
    out.write(buffer.getvalue())
    return rows


def write_lines(out: IO[bytes], lines: Iterator[str], *, count: int, min_bytes: int) -> int:
    """Write `count` lines, or more until `min_bytes` are written; return the line count."""
    written = size = 0
    while written < count or size < min_bytes:
        data = (next(lines) + "\n").encode()
        out.write(data)
        size += len(data)
        written += 1
    return written


def free_name(unprocessed: Path, name: str) -> str:
    """`name`, or `name-2`, `name-3`…, whichever no state folder holds yet."""
    stem, dot, rest = name.partition(".")
    candidate, n = name, 1
    while any((unprocessed.parent / state / candidate).exists() for state in STATE_DIRS):
        n += 1
        candidate = f"{stem}-{n}{dot}{rest}"
    return candidate


def publish(tmp: Path, unprocessed: Path, name: str) -> Path:
    """Give the complete temp file its visible name, never replacing an existing file."""
    while True:
        final = unprocessed / free_name(unprocessed, name)
        try:
            os.link(tmp, final)  # fails if the name was taken meanwhile, unlike rename
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: check-then-rename instead
            os.rename(tmp, final)
            break
        tmp.unlink()
        break
    dir_fd = os.open(unprocessed, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name survives a power cut too
    finally:
        os.close(dir_fd)
    return final


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_file(
    unprocessed: Path, name: str, kind: str, fake: LogFaker, *, lines: int, min_bytes: int
) -> tuple[Path, int]:
    """Write one sample file atomically into `unprocessed`; return its path and line count."""
    fd, tmp_name = tempfile.mkstemp(dir=unprocessed, prefix=f".{name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide it from another user
        with os.fdopen(fd, "wb") as raw:
            if kind == "xlsx":
                count = write_workbook(raw, fake, count=lines, min_bytes=min_bytes)
            elif kind == "gz":
                # mtime=0 and no stored name keep the bytes reproducible for one seed.
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                    count = write_lines(out, LINES[kind](fake), count=lines, min_bytes=min_bytes)
            else:
                count = write_lines(raw, LINES[kind](fake), count=lines, min_bytes=min_bytes)
            raw.flush()
            os.fsync(raw.fileno())
        return publish(tmp, unprocessed, name), count
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class SampleFile(NamedTuple):
    name: str
    kind: str
    host: str
    day: dt.date
    large: bool


def plan(count: int, large: int, rng: random.Random, day: dt.date) -> list[SampleFile]:
    """What to write: kinds cycle, one host per file, a day per round of hosts going back
    in time, large files spread out from the end (so small files show up first)."""
    large_at = {count - 1 - round(i * count / large) for i in range(large)} if large else set()
    files: list[SampleFile] = []
    seen: set[str] = set()
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        if i % len(HOSTS) == 0:
            hosts = rng.sample(HOSTS, len(HOSTS))  # each host once per day
        host = hosts[i % len(HOSTS)]
        day_i = day - dt.timedelta(days=i // len(HOSTS))
        base = f"{host}_{day_i:%Y%m%d}"
        if kind in ("csv", "xlsx"):
            base = f"export_{host}_{day_i:%Y%m%d}"
        name, n = base + SUFFIXES[kind], 1
        while name in seen:
            n += 1
            name = f"{base}-{n}{SUFFIXES[kind]}"
        seen.add(name)
        files.append(SampleFile(name, kind, host, day_i, i in large_at))
    return files


def _date(raw: str) -> dt.date:
    return dt.date.fromisoformat(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    watch_dir = Path(os.environ.get("FOLDERD_WATCH_DIR", "watch_dir"))
    add("--count", type=int, default=20, metavar="N", help="files to write (default: 20)")
    add("--watch-dir", type=Path, default=watch_dir, metavar="DIR",
        help="queue root; files land in its unprocessed/ (default: $FOLDERD_WATCH_DIR, "
             "else watch_dir)")  # fmt: skip
    add("--seed", type=int, metavar="N", help="seed for reproducible output")
    add("--date", type=_date, metavar="YYYY-MM-DD",
        help="day the logs are from (default: today; give it with --seed for byte-identical "
             "output on any day)")  # fmt: skip
    add("--lines", type=int, default=1500, metavar="N",
        help="average lines per ordinary file (default: 1500)")  # fmt: skip
    add("--large", type=int, default=2, metavar="N",
        help="how many of the files are large (default: 2)")  # fmt: skip
    add("--large-mb", type=float, default=4.0, metavar="MB",
        help="size of each large file, before compression (default: 4)")  # fmt: skip
    add("--malformed", type=float, default=0.03, metavar="SHARE",
        help="share of malformed lines, from 0 to 1 (default: 0.03)")  # fmt: skip
    add("--quiet", action="store_true", help="print nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 0 or args.lines < 1 or args.large < 0 or args.large_mb < 0:
        parser.error("--count, --large and --large-mb must be >= 0 and --lines >= 1")
    if not 0 <= args.malformed <= 1:
        parser.error("--malformed must be between 0 and 1")
    rng = random.Random(args.seed)
    day = args.date or dt.date.today()
    unprocessed = args.watch_dir / "unprocessed"
    unprocessed.mkdir(parents=True, exist_ok=True)
    total = 0
    for sample in plan(args.count, min(args.large, args.count), rng, day):
        fake = LogFaker(random.Random(rng.getrandbits(64)), sample.host, sample.day, args.malformed)
        lines = max(1, int(rng.uniform(0.2, 1.8) * args.lines))
        min_bytes = int(args.large_mb * 1_000_000) if sample.large else 0
        path, count = write_file(
            unprocessed, sample.name, sample.kind, fake, lines=lines, min_bytes=min_bytes
        )
        size = path.stat().st_size
        total += size
        if not args.quiet:
            print(f"wrote {path} ({count} lines, {size / 1000:.0f} kB)")
    if not args.quiet:
        print(f"{args.count} files, {total / 1_000_000:.1f} MB in {unprocessed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
