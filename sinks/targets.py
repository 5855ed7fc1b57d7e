"""The sinks of one worker process: a connection (or client) per sink, opened on first use
and reused for every file, dropped when it fails so the next file connects afresh."""

from __future__ import annotations

import os
from pathlib import Path

from config.sinks import S3SinkConfig, SinkConfig, SqlSinkConfig
from sinks.base import Delivery
from sinks.s3 import S3Target
from sinks.sql import SqlTarget
from sinks.unfinished import Unfinished

__all__ = ["Delivery", "Targets"]


class Targets:
    """Sink configs to their live targets (a config is frozen, so it is its own key; a
    reloaded config with the same settings keeps its connection)."""

    def __init__(self) -> None:
        self._sql: dict[SqlSinkConfig, SqlTarget] = {}
        self._s3: dict[S3SinkConfig, S3Target] = {}

    def rows(self, config: SqlSinkConfig, path: str, uid: str, source: str) -> Delivery:
        """Replace the rows of input `uid` with the records in the output file `path`."""
        target = self._sql.get(config)
        if target is None:
            target = self._sql[config] = SqlTarget(config)
        return target.deliver(path, uid, source)

    def retract(self, config: SqlSinkConfig, uid: str) -> None:
        """Delete the rows of input `uid` again (a later sink failed the file)."""
        self.rows(config, os.devnull, uid, "")

    def put(
        self,
        config: S3SinkConfig,
        path: str,
        key: str,
        sha256: str | None,
        meta: dict[str, str],
        notes: Path | None = None,
    ) -> Delivery:
        """Upload the file `path` as object `key` (prefix included), replacing it; `sha256`
        None: hashed as it is read. `notes`: the folder of the notes of multipart uploads
        that may be unfinished (`sinks.unfinished`); without it every key's are listed."""
        target = self._s3.get(config)
        if target is None:
            target = self._s3[config] = S3Target(config)
        unfinished = None
        if notes is not None:
            unfinished = Unfinished(notes, config.endpoint_url or "", config.bucket)
        return target.put(path, key, sha256, meta, unfinished)

    def close(self) -> None:
        targets: list[SqlTarget | S3Target] = [*self._sql.values(), *self._s3.values()]
        for target in targets:
            target.close()
        self._sql.clear()
        self._s3.clear()

    def keep(self, configs: tuple[SinkConfig, ...]) -> None:
        """Close the targets of sinks no longer configured (after a reload)."""
        for sql in [c for c in self._sql if c not in configs]:
            self._sql.pop(sql).close()
        for s3 in [c for c in self._s3 if c not in configs]:
            self._s3.pop(s3).close()
