"""What the dashboard shows of the `notify` webhooks (`daemon.webhooks`): a `/health`
check per target, a warning only (a receiver that is down holds notifications, never
files), and their Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


def checks(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One warning per target: failing (with its last error), or how it is doing."""
    out = []
    for t in targets:
        held = f"{t['pending']} held"
        if t["oldest_age_s"] is not None:
            held += f" (oldest {t['oldest_age_s']:.0f}s)"
        if t["pending"] >= t["max_pending"]:
            held += f", at max_pending {t['max_pending']}: new ones dropped"
        if t["dropped"]:
            held += f", {t['dropped']} dropped"
        if t["failing"]:
            detail = f"{t['target']}: receiver failing: {t['last_error']}; {held}"
        else:
            detail = f"{t['target']}: {t['sent']} sent, {held}"
        ok = not t["failing"] and t["pending"] < t["max_pending"]
        out.append({"name": f"notify {t['name']}", "ok": ok, "detail": detail, "warning": True})
    return out


def metrics(targets: list[dict[str, Any]]) -> Iterator[Metric]:
    labels = ["target"]
    pending = GaugeMetricFamily(
        "folderd_notify_pending", "Notifications held in the outbox for the target", labels=labels
    )
    oldest = GaugeMetricFamily(
        "folderd_notify_oldest_age_seconds", "Age of the oldest held notification", labels=labels
    )
    up = GaugeMetricFamily(
        "folderd_notify_up", "1 unless the target's last attempt failed", labels=labels
    )
    counters = {
        key: CounterMetricFamily(f"folderd_notify_{key}", help_, labels=labels)
        for key, help_ in (
            ("sent", "Notifications the receiver took (2xx) since start"),
            ("failed_attempts", "Attempts that failed (no answer, a timeout, not 2xx)"),
            ("dropped", "Notifications dropped: past max_pending, or refused too often"),
        )
    }
    for t in targets:
        key = [t["name"]]
        pending.add_metric(key, t["pending"])
        oldest.add_metric(key, t["oldest_age_s"] or 0.0)
        up.add_metric(key, 0 if t["failing"] else 1)
        for name, family in counters.items():
            family.add_metric(key, t[name])
    yield from (pending, oldest, up, *counters.values())
