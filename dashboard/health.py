"""`/health`: is this daemon doing its job? 200 when every check passes, 503 when one fails,
with the list of checks either way, so a load balancer, systemd or a person can see why.

Cheap by design (one `status()` copy and two statvfs calls): probes call it often, and it
must answer quickly while the daemon works flat out.
"""

from __future__ import annotations

from typing import Any

from dashboard import notices
from dashboard.system import disk_free

STALL_S = 15.0  # the loop wakes at least once a second; this long without a tick is a stall


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def checks(status: dict[str, Any], min_disk_free_mb: int) -> list[dict[str, Any]]:
    out = []
    out.append(_check("ready", status["ready"], "accepting files" if status["ready"] else
                      "starting or shutting down"))  # fmt: skip
    watcher = status["watcher"]
    out.append(_check(
        "watcher", watcher["alive"] is not False,
        f"{watcher['kind'] or 'none'}, restarts {watcher['restarts']}",
    ))  # fmt: skip
    workers = status["workers"]
    alive, frozen = workers["alive"], workers["frozen"]
    stopped = f"; frozen (SIGSTOP?): PID {', '.join(map(str, frozen))}" if frozen else ""
    out.append(_check(
        "workers", alive == workers["size"] and workers["size"] > 0 and not frozen,
        f"{alive} of {workers['size']} alive, {workers['busy']} busy, {workers['deaths']} died"
        + stopped,
    ))  # fmt: skip
    out.append(_stalled_check(status["stalled"]))
    journal = status["journal"]
    out.append(_check("journal", journal["healthy"], journal["error"] or "writable"))
    paused = status["paused"]
    out.append(_check("paused", paused is None, "claiming" if paused is None else
                      f"paused {paused['for_s']:.0f}s: {paused['reason']}"))  # fmt: skip
    for name, path in (("disk_watch_dir", status["watch_dir"]),
                       ("disk_results", status["results_dir"])):  # fmt: skip
        disk = disk_free(path)
        free = disk.get("free_bytes")
        if free is None:
            out.append(_check(name, False, f"{path}: {disk.get('error')}"))
        else:
            free_mb = free >> 20
            out.append(_check(
                name, free_mb >= min_disk_free_mb,
                f"{free_mb} MB free in {path} (minimum {min_disk_free_mb} MB)",
            ))  # fmt: skip
    if (shared := status["shared"]) is not None:
        out.extend(_shared_checks(shared))
    age = status["loop"]["last_tick_age_s"]
    c = status["counts"]
    backlog = c["queued"] + c["processing"] + c["waiting"]
    stalled = age > STALL_S and backlog > 0
    out.append(_check(
        "loop", not stalled,
        f"last tick {age:.1f}s ago, {backlog} file(s) queued or in flight",
    ))  # fmt: skip
    out.extend(_sink_check(sink) for sink in status["sinks"])
    out.extend(notices.checks(status.get("notify", [])))
    return out


def _stalled_check(stalled: list[dict[str, Any]]) -> dict[str, Any]:
    """Files whose workers made no progress for --stall-timeout: which, where, how long."""
    if not stalled:
        return _check("stalled", True, "every file in flight is making progress")
    parts = []
    for s in stalled:
        kill = s["kill_after_s"]
        then = f"; its worker is killed at {kill:g}s" if kill else ""
        parts.append(f"{s['path']} (worker PID {s['worker_pid']}): no progress for "
                     f"{s['for_s']:.0f}s, {s['where']}{then}")  # fmt: skip
    return _check("stalled", False, "; ".join(parts))


def _sink_check(sink: dict[str, Any]) -> dict[str, Any]:
    """One per configured sink: its last word, success or failure."""
    where = sink["location"]
    if not sink["ok"]:
        detail = f"{where}: failing {sink['last_error_age_s']:.0f}s ago: {sink['last_error']}"
    elif sink["deliveries"]:
        detail = (f"{where}: last delivery {sink['last_ok_age_s']:.0f}s ago, "
                  f"{sink['deliveries']} since start")  # fmt: skip
    else:
        detail = f"{where}: no deliveries yet"
    return _check(f"sink {sink['name']}", sink["ok"], detail)


def _shared_checks(shared: dict[str, Any]) -> list[dict[str, Any]]:
    """Shared mode: this instance's lease (it commits nothing without one); warnings, which
    leave the status healthy, for peers whose expired claims are still there or that work
    while this instance sees nothing, and for mount options that hide peers' work; and
    how inputs are named here (`daemon.identity`)."""
    me, *peers = shared["instances"]
    age = me["lease_age_s"]
    lease = (f"{shared['instance']}: renewed {age or 0:.1f}s ago, lasts {me['lease_s']:g}s; "
             f"{shared['renewals']} renewals, {shared['takeovers']} files taken over")  # fmt: skip
    if shared.get("conflict"):
        lease = shared["conflict"]
    out = [_check("lease", me["state"] == "running", lease)]
    stuck = {p["name"]: n for p in peers if (n := shared["orphaned"].get(p["name"]))}
    problems = [f"{name}: lease expired, {n} claim(s) not taken over" for name, n in stuck.items()]
    if shared.get("blind"):  # peers busy while this one sees nothing: a stale view
        problems.append(shared["blind"])
    detail = "; ".join(problems) or f"{len(peers)} peer(s), none stuck"
    out.append({**_check("peers", not problems, detail), "warning": True})
    ident = shared.get("identity") or {}
    how = (f"inputs named by a record written at their claim: {ident['why']}"
           if ident.get("mode") == "record" else "inputs named by inode numbers")  # fmt: skip
    mount = ident.get("mount") or []
    out.append({**_check("identity", not mount, "; ".join([how, *mount])), "warning": True})
    return out


def health(status: dict[str, Any], min_disk_free_mb: int) -> tuple[int, dict[str, Any]]:
    results = checks(status, min_disk_free_mb)
    ok = all(c["ok"] or c.get("warning") for c in results)
    body = {
        "status": "healthy" if ok else "unhealthy",
        "version": status["version"],
        "uptime_s": status["uptime_s"],
        "checks": results,
    }
    return (200 if ok else 503), body
