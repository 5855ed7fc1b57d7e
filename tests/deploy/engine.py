"""A private Docker engine (Debian's docker.io) for the tests, leaving the host alone.

Its own data root, exec root, socket and containerd under the work folder; its own bridge
(`fdtest0`, made here, so a `docker0` of the machine's is never touched); no iptables
rules and no change to IP forwarding (published ports work through docker-proxy on
loopback); containers' cgroups under one parent folder. `stop()` takes all of it down,
and `sweep()` what a killed run left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.deploy import host
from tests.deploy.shell import Log, fail, run, wait_for

DOCKER = "/usr/bin/docker"  # Debian's client: /usr/local/bin may hold another, newer one
COMPOSE = "/usr/bin/docker-compose"
BRIDGE = "fdtest0"
CGROUP_PARENT = "folderd-test-docker"
BRIDGES = "bridges"  # the bridges of compose's networks, noted as they are made
# Candidates for the bridge's network; the first that no route of the machine uses.
SUBNETS = ("172.31.254.0/24", "10.254.254.0/24", "192.168.254.0/24")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 40


class Engine:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.sock = work / "docker.sock"
        self.pidfile = work / "dockerd.pid"
        self.log_path = work / "dockerd.log"
        self.log = Log.file(self.log_path)
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(work),
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_CONFIG": str(work / "client"),
        }
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        _add_bridge(BRIDGE, _free_subnet())
        cmd = [
            "dockerd", "--data-root", self.work / "data", "--exec-root", self.work / "exec",
            "--pidfile", self.pidfile, "-H", f"unix://{self.sock}",
            "--iptables=false", "--ip-forward=false", "--ip-masq=false",
            "--storage-driver=overlay2", "--bridge", BRIDGE, "--cgroup-parent", CGROUP_PARENT,
        ]  # fmt: skip
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
            )  # fmt: skip
        wait_for(self._answers, START_TIMEOUT_S, "dockerd to answer", self.log)

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            fail(f"dockerd exited ({self._proc.returncode})", self.log)
        done = subprocess.run([DOCKER, "version"], env=self.env, capture_output=True, timeout=30)
        return done.returncode == 0

    def docker(
        self, *args: str | Path, timeout: float = 60, check: bool = True,
        logs: Sequence[Log] = (), input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return run([DOCKER, *args], timeout=timeout, env=self.env, check=check,
                   logs=[*logs, self.log], input=input)  # fmt: skip

    def compose(
        self, project: Path, *args: str, env: Mapping[str, str], timeout: float = 300,
        check: bool = True, logs: Sequence[Log] = (),
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return run([COMPOSE, *args], timeout=timeout, env={**self.env, **env}, cwd=project,
                   check=check, logs=[*logs, self.log])  # fmt: skip

    def note_network(self, name: str) -> None:
        """Note the bridge of a network compose made, in the work folder: if a killed run
        leaves it, the next run's sweep removes it."""
        done = self.docker("network", "inspect", "-f", "{{.Id}}", name, check=False)
        if done.returncode == 0:
            with (self.work / BRIDGES).open("a") as f:
                f.write(f"br-{done.stdout.strip()[:12]}\n")

    def stop(self) -> None:
        """Remove every container and network, stop dockerd, then what it leaves: its
        network-namespace mount, the bridges, the cgroup folders."""
        if self._proc is not None and self._proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=STOP_TIMEOUT_S, check=False)
            self.docker("network", "prune", "-f", check=False)
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(10)
        sweep(self.work)


def sweep(work: Path) -> None:
    """Whatever an engine under `work` left, even from a run that was killed: its
    processes (dockerd, containerd and the shims name the work folder), mounts, bridges and
    cgroup folders."""
    host.kill_processes_naming(work)
    host.unmount_under(work)
    noted = (work / BRIDGES).read_text().split() if (work / BRIDGES).exists() else []
    for name in (BRIDGE, *noted):
        host.delete_link(name)
    host.remove_cgroups(CGROUP_PARENT)


def _free_subnet() -> ipaddress.IPv4Network:
    used = host.routed_networks()
    for candidate in map(ipaddress.IPv4Network, SUBNETS):
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    fail(f"every candidate subnet for the test bridge is routed already: {SUBNETS}")


def _add_bridge(name: str, subnet: ipaddress.IPv4Network) -> None:
    host.delete_link(name)
    gateway = f"{next(subnet.hosts())}/{subnet.prefixlen}"
    run(["ip", "link", "add", name, "type", "bridge"], timeout=30)
    run(["ip", "addr", "add", gateway, "dev", name], timeout=30)
    run(["ip", "link", "set", name, "up"], timeout=30)
