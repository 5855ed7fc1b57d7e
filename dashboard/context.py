"""The dashboard's parts, built once per app and shared by every request
(`request.app.state.dashboard`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from dashboard.history import History
from dashboard.hub import Hub
from dashboard.lines import Indexes
from dashboard.queries import JournalReader
from dashboard.sandbox import PreviewWorker
from dashboard.stats import Stats
from dashboard.system import SystemSampler

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.control import DaemonAPI


@dataclass
class Dashboard:
    api: DaemonAPI
    settings: Settings
    registry: CollectorRegistry
    stats: Stats
    reader: JournalReader
    sampler: SystemSampler
    hub: Hub
    preview: PreviewWorker
    history: History
    lines: Indexes

    @classmethod
    def build(cls, api: DaemonAPI, settings: Settings) -> Dashboard:
        registry = CollectorRegistry()
        stats = Stats(registry)
        reader = JournalReader(api)
        sampler = SystemSampler(api.folders.root, api.folders.results)
        hub = Hub(api, stats, reader, sampler)
        preview = PreviewWorker(settings.preview_timeout, api.worker_init)
        return cls(api, settings, registry, stats, reader, sampler, hub, preview, History(),
                   Indexes())  # fmt: skip

    @property
    def max_upload_bytes(self) -> int:
        return self.settings.max_upload_mb << 20
