"""Delivery of a file's results to where people use them: rows into SQLite or PostgreSQL
tables (`sinks.sql`), objects into S3-compatible storage (`sinks.s3`). It knows nothing of
folders or states: the daemon hands it temp files and an input's identity while it commits
that input, and every delivery replaces that input's earlier one (rows by `uid`, objects by
key), so a re-run after a crash never adds a second copy. Errors come in two kinds the
daemon tells apart: `SinkDataError` (a record can never be delivered: the file fails) and
`SinkUnavailable` (the server, its credentials or its time: the file waits).
"""

from __future__ import annotations

from sinks.errors import SinkDataError, SinkError, SinkUnavailable
from sinks.targets import Delivery, Targets

__all__ = ["Delivery", "SinkDataError", "SinkError", "SinkUnavailable", "Targets"]
