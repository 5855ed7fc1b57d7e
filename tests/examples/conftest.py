"""The recipes' tests use the sink tests' real servers: the same fixtures, imported (not
copied) from tests/sinks/conftest.py."""

from __future__ import annotations

from tests.sinks.conftest import bucket, pg_cluster, postgres, s3_server

__all__ = ["bucket", "pg_cluster", "postgres", "s3_server"]
