"""Where a result came from: what every summary records of the run that produced it.

A `Provenance` is made in the daemon's process each time a pipeline config is loaded (at
start and at every reload): folderd's version, the config (its path, the sha256 of its
canonical form, its `version` and `description`), the instance (shared mode) and the host.
It travels with each job to its worker, so a summary names the config its worker ran,
even when a reload happened while the file was in flight; the worker adds the route the
file took and its reader (`route_taken`). The journal indexes files by the digest, and
keeps each config the daemon ran in its `configs` table (`Journal.config_loaded`).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from daemon.snapshot import VERSION
from formats.names import shown
from processors import file_routes

if TYPE_CHECKING:
    from daemon.journal import Journal
    from processors import LoadedPipeline, Pipeline

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Provenance:
    """The run a result comes from (see the module's docstring)."""

    config_path: str
    config_sha256: str
    config_version: Any  # the config's `version` as written (1 when it has none)
    config_description: str
    instance: str | None
    host: str
    folderd: str = VERSION

    @classmethod
    def of(cls, path: Path, loaded: LoadedPipeline, instance: str | None = None) -> Provenance:
        """The provenance of results `loaded` (read from `path`) produces on this host."""
        return cls(
            config_path=shown(str(path.resolve())),  # as names leave (formats.names)
            config_sha256=loaded.sha256,
            config_version=loaded.raw.get("version", 1),
            config_description=loaded.config.description,
            instance=instance or None,
            host=socket.gethostname(),
        )

    def as_json(self) -> dict[str, Any]:
        """The summary's `provenance` (without the route, which only the worker knows)."""
        return {
            "folderd": self.folderd,
            "config": {
                "path": self.config_path,
                "sha256": self.config_sha256,
                "version": self.config_version,
                "description": self.config_description,
            },
            "instance": self.instance,
            "host": self.host,
        }


def route_taken(pipeline: Pipeline) -> dict[str, Any] | None:
    """The route the file `pipeline` last ran took, and its reader; None if none matched
    (or the file was not read as far as choosing one)."""
    index = pipeline.route_index
    if index is None:
        return None
    route = pipeline.config.routes[index]
    return {
        "index": index,
        "start": route.start,
        "reader": route.reader.type,
        "describe": file_routes.describe(route),
    }


def recorded(
    journal: Journal, path: Path, loaded: LoadedPipeline, instance: str | None
) -> Provenance:
    """The provenance of a config just loaded, recorded in the journal's `configs`."""
    prov = Provenance.of(path, loaded, instance)
    now = time.time()
    journal.execute(
        "config_loaded",
        "INSERT INTO configs (sha256, path, version, description, first_loaded, last_loaded)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET path = excluded.path,"
        " last_loaded = excluded.last_loaded, loads = loads + 1",
        (prov.config_sha256, prov.config_path, json.dumps(prov.config_version),
         prov.config_description, now, now),
    )  # fmt: skip
    log.info("config_loaded", config=prov.config_path, sha256=prov.config_sha256)
    return prov
