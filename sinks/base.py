"""What one delivery reports (a file's summary lists one per sink)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Delivery:
    sink: str  # where it was declared: "outputs.rows", "deliver[0]"
    type: str  # "sql" or "s3"
    location: str  # table (with its redacted URL) or s3://bucket/key
    seconds: float
    rows: int | None = None
    bytes: int | None = None
    etag: str | None = None
    sha256: str | None = None
    checked_by: str | None = None  # the checksum the server checked: "crc32", "content-md5"
    already_delivered: bool = False  # skip_existing found the same bytes there

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}
