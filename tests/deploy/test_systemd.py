"""deploy/folderd.service under a real systemd, installed by deploy/install.sh.

A minimal Debian with systemd, booted with systemd-nspawn (tests/deploy/machine.py); the
checkout copied to /root/folderd as a user's clone; `deploy/install.sh` run there as the
README says. Then the service's life, in order: enabled and started, a file dropped by a
member of the folderd group, a reload, its journal, its open-file limit, a frozen main
loop the watchdog restarts, an upgrade by install.sh, a stop.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.deploy.machine import Machine
from tests.deploy.shell import Log, Stopwatch, check, free_port, unpack, wait_for

pytestmark = pytest.mark.timeout(900)

UNIT = "folderd.service"
QUEUE = "/var/lib/folderd/watch_dir"
RESULTS = "/var/lib/folderd/results"
DROPPER = "dropper"  # a user who delivers files: a member of the folderd group
WATCHDOG_MARGIN_S = 30
LOG = "2024-01-02T10:00:00 INFO app started\n2024-01-02T10:00:01 ERROR disk full\n"


def unit_value(key: str) -> str:
    (value,) = re.findall(rf"^{key}=(.*)$", (ROOT / "deploy" / UNIT).read_text(), re.MULTILINE)
    return value.strip()


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


@dataclass
class Service:
    machine: Machine
    port: int

    @property
    def journal(self) -> Log:
        return self.machine.journal_log(UNIT)

    def props(self, *names: str) -> dict[str, str]:
        return self.machine.show(UNIT, *names)

    def main_pid(self) -> int:
        return int(self.props("MainPID")["MainPID"])

    def events(self, *args: str) -> list[dict[str, Any]]:
        """The daemon's own log lines (not systemd's about it), parsed."""
        return [_parsed(e) for e in self.machine.journal(UNIT, *args) if e.get("_PID") != "1"]

    def cursor(self) -> str:
        out = self.machine.sh(f"journalctl -u {UNIT} -n 0 --show-cursor --no-pager").stdout
        return out.rsplit("-- cursor: ", 1)[1].strip()

    def drop(self, name: str) -> None:
        """As a member of the folderd group: written under a hidden name, then renamed."""
        unprocessed = f"{QUEUE}/unprocessed"
        self.machine.sh(
            f"printf %s {shlex.quote(LOG)} > {unprocessed}/.{name}.part"
            f" && mv {unprocessed}/.{name}.part {unprocessed}/{name}",
            user=DROPPER,
        )

    def processed(self, name: str, timeout: float) -> dict[str, Any]:
        summary = self.machine.path(f"{RESULTS}/{name}.json")
        wait_for(summary.exists, timeout, f"{name} processed", self.journal)
        return json.loads(summary.read_text())

    def health(self) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=10)


def _parsed(entry: dict[str, Any]) -> dict[str, Any]:
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journalctl's form of a message that is not UTF-8
        message = bytes(message).decode(errors="replace")
    try:
        event = json.loads(message)
    except ValueError:
        event = None
    return event if isinstance(event, dict) else {"not_json": message}


@pytest.fixture(scope="module")
def machine(
    work: Path, debian: Path, checkout: Path, timings: dict[str, float]
) -> Iterator[Machine]:
    base = work / "machine"
    root = base / "root"
    with Stopwatch(timings, "systemd: unpack the tree"):
        unpack(debian, root)
    unpack(checkout, root / "root" / "folderd")  # a user's clone
    m = Machine(root, base)
    try:
        with Stopwatch(timings, "systemd: boot to running"):
            m.boot()
        yield m
    finally:
        with Stopwatch(timings, "systemd: poweroff"):
            m.poweroff()


@pytest.fixture(scope="module")
def service(machine: Machine, timings: dict[str, float]) -> Service:
    with Stopwatch(timings, "systemd: deploy/install.sh (first install, pip included)"):
        out = machine.sh("/root/folderd/deploy/install.sh", timeout=600).stdout
    check("systemctl enable --now folderd" in out, f"install.sh said:\n{out}")
    # As an admin would: a port of the settings file (the machine shares this one's network,
    # so a free port of ours), and a user who delivers files, in the folderd group.
    port = free_port()
    machine.sh(f"sed -i 's/^#FOLDERD_PORT=.*/FOLDERD_PORT={port}/' /etc/folderd/folderd.env"
               f" && grep -qx FOLDERD_PORT={port} /etc/folderd/folderd.env")  # fmt: skip
    machine.sh(f"useradd --create-home {DROPPER} && usermod -aG folderd {DROPPER}")
    return Service(machine, port)


def test_enable_now_starts_it_ready_with_its_status_line(
    service: Service, timings: dict[str, float]
) -> None:
    with Stopwatch(timings, "systemd: systemctl enable --now (returns at READY=1)"):
        service.machine.sh(f"systemctl enable --now {UNIT}", timeout=180, logs=(service.journal,))
    props = service.props("ActiveState", "SubState", "UnitFileState", "StatusText", "Type")
    check(props["ActiveState"] == "active" and props["SubState"] == "running",
          f"not running: {props}", service.journal)  # fmt: skip
    assert props["UnitFileState"] == "enabled"
    assert props["Type"] == "notify"
    # STATUS= from the daemon (only the notify protocol puts it there)
    check(props["StatusText"].startswith("queued "), f"StatusText: {props}", service.journal)
    r = service.health()
    check(r.status_code == 200, f"/health: {r.status_code} {r.text}", service.journal)


def test_a_file_dropped_by_a_member_of_the_folderd_group_is_processed(service: Service) -> None:
    service.drop("from-dropper.log")
    summary = service.processed("from-dropper.log", 30)
    check(summary["status"] == "processed", f"summary: {summary}", service.journal)
    assert service.machine.path(f"{QUEUE}/processed/from-dropper.log").exists()
    # UMask=0027: results readable by the folderd group (the dropper is in it), not by all
    result = service.machine.path(f"{RESULTS}/from-dropper.log.json")
    assert result.stat().st_mode & 0o777 == 0o640
    service.machine.sh(f"cat {RESULTS}/from-dropper.log.json >/dev/null", user=DROPPER)


def test_reload_keeps_the_process_and_rereads_the_config(
    service: Service, timings: dict[str, float]
) -> None:
    pid = service.main_pid()
    cursor = service.cursor()
    with Stopwatch(timings, "systemd: systemctl reload"):
        service.machine.sh(f"systemctl reload {UNIT}", timeout=60, logs=(service.journal,))
    wait_for(lambda: any(e.get("event") == "config_reloaded"
                         for e in service.events(f"--after-cursor={cursor}")),
             30, "config_reloaded in the journal", service.journal)  # fmt: skip
    props = service.props("MainPID", "ActiveState")
    assert (int(props["MainPID"]), props["ActiveState"]) == (pid, "active")


def test_each_line_the_daemon_logs_is_json(service: Service) -> None:
    events = service.events()
    not_json = [e["not_json"] for e in events if "not_json" in e]
    check(not not_json, f"lines that are not JSON: {not_json[:5]}", service.journal)
    names = {e.get("event") for e in events}
    assert {"daemon_started", "file_processed", "config_reloaded"} <= names


def _open_files(limits: str) -> tuple[int, int]:
    """Soft and hard "Max open files" of a /proc/<pid>/limits."""
    found = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits, re.MULTILINE)
    if found is None:
        pytest.fail(f"no open-file limit in:\n{limits}")
    return int(found[1]), int(found[2])


def test_the_open_file_limit_is_the_units_within_what_the_machine_allows(
    service: Service,
) -> None:
    wanted = int(unit_value("LimitNOFILE"))
    # What the machine allows: the hard limit the container's systemd itself got.
    _, allowed = _open_files(Path(f"/proc/{service.machine.leader}/limits").read_text())
    pid = service.main_pid()
    theirs = _open_files(service.machine.sh(f"cat /proc/{pid}/limits").stdout)
    expected = min(wanted, allowed)
    assert theirs == (expected, expected)
    started = [e for e in service.events() if e.get("event") == "dashboard_started"]
    assert started[-1]["open_file_limit"] == expected


def test_the_watchdog_restarts_a_frozen_daemon(service: Service, timings: dict[str, float]) -> None:
    """SIGSTOP: the main loop stops sending WATCHDOG=1; within WatchdogSec systemd kills it
    (SIGABRT), and RestartSec later starts it again; a file dropped meanwhile is processed."""
    within = seconds(unit_value("WatchdogSec")) + seconds(unit_value("RestartSec"))
    old = service.main_pid()
    restarts = int(service.props("NRestarts")["NRestarts"])
    cursor = service.cursor()
    frozen = time.monotonic()
    service.machine.sh(f"kill -STOP {old}")
    service.drop("while-frozen.log")

    def restarted() -> bool:
        props = service.props("MainPID", "ActiveState", "NRestarts")
        return (int(props["NRestarts"]) > restarts and props["ActiveState"] == "active"
                and int(props["MainPID"]) not in (0, old))  # fmt: skip

    wait_for(restarted, within + WATCHDOG_MARGIN_S, "the watchdog's restart", service.journal)
    timings["systemd: SIGSTOP to restarted by the watchdog"] = time.monotonic() - frozen
    said = " ".join(str(e.get("MESSAGE")) for e in service.machine.journal(
        UNIT, f"--after-cursor={cursor}"))  # fmt: skip
    assert "Watchdog timeout" in said, said[-2000:]
    summary = service.processed("while-frozen.log", 60)
    assert summary["status"] == "processed"


def _digests(machine: Machine, *folders: str) -> dict[str, str]:
    found = {}
    for folder in folders:
        top = machine.path(folder)
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            if ".folderd" not in path.parts:  # the journal changes as the daemon runs
                found[str(path.relative_to(machine.root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


def test_install_sh_again_upgrades_and_keeps_settings_and_data(
    service: Service, timings: dict[str, float]
) -> None:
    m = service.machine
    # The admin's own settings and pipeline config (still a valid one) ...
    config = m.path("/etc/folderd/pipeline_config.json")
    edited = json.loads(config.read_text())
    edited["description"] = "edited by the admin: an upgrade keeps it"
    config.write_text(json.dumps(edited, indent=2))
    kept = _digests(m, "/etc/folderd", QUEUE, RESULTS)
    # ... and a new version of the code in the clone.
    m.sh("echo '<!-- the upgraded version -->' >> /root/folderd/README.md")
    before = service.props("MainPID", "InvocationID")
    with Stopwatch(timings, "systemd: deploy/install.sh again (an upgrade)"):
        out = m.sh("/root/folderd/deploy/install.sh", timeout=600, logs=(service.journal,)).stdout
    assert "folderd.env exists: kept" in out and "pipeline_config.json exists: kept" in out, out
    assert _digests(m, "/etc/folderd", QUEUE, RESULTS) == kept
    assert m.path("/opt/folderd/README.md").read_text().endswith("the upgraded version -->\n")
    after = service.props("MainPID", "InvocationID", "ActiveState")
    check(after["ActiveState"] == "active" and after["InvocationID"] != before["InvocationID"]
          and after["MainPID"] != before["MainPID"], f"not restarted: {before} -> {after}",
          service.journal)  # fmt: skip
    r = service.health()  # on the port of the kept settings
    check(r.status_code == 200, f"/health after the upgrade: {r.status_code}", service.journal)


def test_stop_is_clean_and_leaves_nothing_to_kill(
    service: Service, timings: dict[str, float]
) -> None:
    cursor = service.cursor()
    with Stopwatch(timings, "systemd: systemctl stop"):
        service.machine.sh(f"systemctl stop {UNIT}", timeout=120, logs=(service.journal,))
    props = service.props("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    assert props == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1",
                     "ExecMainStatus": "0"}, props  # fmt: skip
    entries = service.machine.journal(UNIT, f"--after-cursor={cursor}")
    said = [str(e.get("MESSAGE")) for e in entries]
    assert any('"daemon_stopped"' in line for line in said), said
    killed = [line for line in said if "SIGKILL" in line or "Killing process" in line]
    assert killed == [], said
    assert list(service.machine.path(f"{QUEUE}/underprocess").iterdir()) == []
