"""`/metrics`: Prometheus text via prometheus-client, in the dashboard's own registry.

The processing-duration histogram lives in `Stats` (observed per finished file);
everything else is read at scrape time from the daemon's snapshot, the cached per-state
journal totals and the last system sample, by one custom collector. Process CPU and memory
of the daemon come from prometheus-client's own `ProcessCollector`.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from daemon.sinkstats import BUCKETS
from dashboard import notices

if TYPE_CHECKING:
    from dashboard.context import Dashboard

__all__ = ["CONTENT_TYPE_LATEST", "install", "render"]


class DaemonCollector(Collector):
    def __init__(self, dash: Dashboard) -> None:
        self._dash = dash

    def collect(self) -> Iterator[Metric]:
        dash = self._dash
        st = dash.api.status()
        counts = st["counts"]
        files = GaugeMetricFamily(
            "folderd_files", "Files by state (journal totals per folder)", labels=["state"]
        )
        for state, n in dash.hub.state_counts.items():
            files.add_metric([state], n)
        yield files
        live = GaugeMetricFamily(
            "folderd_queue", "Files the daemon holds now, by stage", labels=["stage"]
        )
        for stage in ("queued", "processing", "waiting"):
            live.add_metric([stage], counts[stage])
        yield live
        for name, key, help_ in (
            ("folderd_files_processed", "processed", "Files processed since start"),
            ("folderd_files_failed", "failed", "Files that failed since start"),
            ("folderd_files_rejected", "rejected", "Files rejected unread since start"),
            ("folderd_files_retried", "retried", "Retries scheduled since start"),
            ("folderd_bytes_processed", "bytes", "Input bytes processed since start"),
        ):
            yield CounterMetricFamily(name, help_, value=counts[key])
        lines = CounterMetricFamily(
            "folderd_lines", "Lines that reached each tag since start", labels=["tag"]
        )
        for tag, n in list(dash.stats.tags.items()):
            lines.add_metric([tag], n)
        yield lines
        yield GaugeMetricFamily(
            "folderd_oldest_queued_age_seconds",
            "Age of the oldest file waiting in unprocessed/",
            value=st["oldest_queued_age_s"],
        )
        yield GaugeMetricFamily("folderd_uptime_seconds", "Daemon uptime", value=st["uptime_s"])
        workers = st["workers"]
        yield GaugeMetricFamily("folderd_workers_alive", "Live workers", value=workers["alive"])
        yield GaugeMetricFamily("folderd_workers_busy", "Busy workers", value=workers["busy"])
        stalled = st["stalled"]
        yield GaugeMetricFamily(
            "folderd_files_stalled", "Files whose worker made no progress for --stall-timeout",
            value=len(stalled),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "folderd_stalled_seconds", "The longest time a file in flight has made no progress "
            "(0 while none is stalled)", value=max((s["for_s"] for s in stalled), default=0.0),
        )  # fmt: skip
        if workers["memory_limit_mb"] is not None:
            yield GaugeMetricFamily(
                "folderd_worker_memory_limit_bytes", "The heap cap of each worker process",
                value=workers["memory_limit_mb"] << 20,
            )  # fmt: skip
        watcher = st["watcher"]
        for name, value, help_ in (
            ("folderd_worker_deaths", workers["deaths"], "Worker processes that died (replaced)"),
            ("folderd_stall_kills", workers["stall_kills"],
             "Workers killed after --stall-kill-after without progress"),
            ("folderd_worker_memory_exceeded", workers["memory_exceeded"],
             "Attempts that hit the worker memory cap or the kernel's OOM killer"),
            ("folderd_watcher_overflows", watcher["overflows"],
             "inotify queue overflows (each triggers a rescan)"),
            ("folderd_watcher_restarts", watcher["restarts"],
             "Watcher threads found dead and restarted"),
        ):  # fmt: skip
            yield CounterMetricFamily(name, help_, value=value)
        yield GaugeMetricFamily(
            "folderd_journal_healthy", "1 when the journal is writable",
            value=1 if st["journal"]["healthy"] else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "folderd_paused", "1 while claiming is paused by an environment fault",
            value=0 if st["paused"] is None else 1,
        )  # fmt: skip
        pauses = CounterMetricFamily(
            "folderd_pauses", "Times claiming paused since start, by cause", labels=["cause"]
        )
        for cause, n in st["pauses"].items():
            pauses.add_metric([cause], n)
        yield pauses
        yield from _sink_metrics(st["sinks"])
        yield from notices.metrics(st.get("notify", []))
        if (shared := st["shared"]) is not None:
            yield from _shared_metrics(shared)
        sample = dash.sampler.last
        if sample.get("sampled_at"):
            yield GaugeMetricFamily(
                "folderd_cpu_percent", "CPU of the daemon and its workers (100 = one core)",
                value=sample["cpu_percent"],
            )  # fmt: skip
            yield GaugeMetricFamily(
                "folderd_memory_rss_bytes", "Resident memory of the daemon and its workers",
                value=sample["memory_rss_bytes"],
            )  # fmt: skip
            disk = GaugeMetricFamily(
                "folderd_disk_free_bytes", "Free space on the filesystem", labels=["dir"]
            )
            for name, d in sample["disk"].items():
                if "free_bytes" in d:
                    disk.add_metric([name], d["free_bytes"])
            yield disk


def _sink_metrics(sinks: list[dict[str, Any]]) -> Iterator[Metric]:
    labels = ["sink", "type"]
    up = GaugeMetricFamily("folderd_sink_up", "1 unless the sink's last word was a failure",
                           labels=labels)  # fmt: skip
    counters = {
        key: CounterMetricFamily(f"folderd_sink_{key}", help_, labels=labels)
        for key, help_ in (
            ("deliveries", "Deliveries the sink took since start"),
            ("already_delivered", "Deliveries skipped: the same bytes were there (skip_existing)"),
            ("rows", "Rows loaded into the sink since start"),
            ("bytes", "Bytes uploaded to the sink since start"),
        )
    }
    errors = CounterMetricFamily(
        "folderd_sink_errors", "Failed deliveries since start: unavailable (the file waits), "
        "transient (retried) or data (a record's type: the file failed)",
        labels=[*labels, "kind"],
    )  # fmt: skip
    seconds = HistogramMetricFamily(
        "folderd_sink_delivery_seconds", "Time one file's delivery to the sink took",
        labels=labels,
    )  # fmt: skip
    for s in sinks:
        key = [s["name"], s["type"]]
        up.add_metric(key, 1 if s["ok"] else 0)
        for name, family in counters.items():
            family.add_metric(key, s[name])
        for kind, n in s["errors"].items():
            errors.add_metric([*key, kind], n)
        cumulative = list(itertools.accumulate(s["buckets"]))
        bounds = [*map(str, BUCKETS), "+Inf"]
        seconds.add_metric(key, list(zip(bounds, cumulative, strict=True)), s["seconds_sum"])
    yield from (up, *counters.values(), errors, seconds)


def _shared_metrics(shared: dict[str, Any]) -> Iterator[Metric]:
    """Shared mode: this instance's part in the coordination, and the peers it sees."""
    for name, key, help_ in (
        ("folderd_takeovers", "takeovers", "Files taken back from expired peers' claims"),
        ("folderd_claim_races_lost", "lost_races", "Claims a peer's rename won"),
        ("folderd_lease_renewals", "renewals", "Renewals of this instance's lease"),
        ("folderd_lease_renew_failures", "renew_failures", "Lease renewals that failed"),
    ):
        yield CounterMetricFamily(name, help_, value=shared[key])
    peers = GaugeMetricFamily(
        "folderd_instances", "Instances on this watch_dir by lease state", labels=["state"]
    )
    states = Counter(i["state"] for i in shared["instances"])
    for state in ("running", "lapsed", "expired"):
        peers.add_metric([state], states.get(state, 0))
    yield peers
    if (folders := shared["folders"]) is not None:
        files = GaugeMetricFamily(
            "folderd_shared_folder_files",
            "Files in each folder of the shared watch_dir, all instances together",
            labels=["folder"],
        )
        for folder, n in folders["files"].items():
            files.add_metric([folder], n)
        yield files


def install(dash: Dashboard) -> None:
    disable_created_metrics()  # `*_created` series only add noise to a daemon's scrape
    ProcessCollector(registry=dash.registry)
    dash.registry.register(DaemonCollector(dash))


def render(dash: Dashboard) -> bytes:
    return generate_latest(dash.registry)
