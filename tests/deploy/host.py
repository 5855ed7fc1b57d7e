"""Undoing what the deployment tests do to this machine: processes, mounts, network links
and cgroup folders. Each function removes only what it is named (a path under the work
folder, a link or cgroup name of the tests' own) and is safe to call when there is nothing."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
from pathlib import Path

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")


def kill_processes_naming(path: Path) -> list[int]:
    """SIGKILL every process whose command line names `path` or a path under it, and their
    descendants (nginx's workers, say, name nothing); never this process or its ancestors.
    Returns their PIDs."""
    mark = str(path)
    spared = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    doomed: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["pid"] in spared or not any(mark in arg for arg in cmdline):
            continue
        with contextlib.suppress(psutil.Error):
            for one in [proc, *proc.children(recursive=True)]:
                doomed.setdefault(one.pid, one)
    for proc in doomed.values():
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(list(doomed.values()), 10)
    return list(doomed)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or under `path`, deepest first."""
    found = []
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 for a space
            if point == str(path) or point.startswith(prefix):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_under(path: Path) -> None:
    for point in mounts_under(path):
        done = subprocess.run(["umount", point], capture_output=True, timeout=30)
        if done.returncode != 0:  # still busy: detach it, it goes when its last user does
            subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def delete_link(name: str) -> None:
    if Path("/sys/class/net", name).exists():
        subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=30)


def routed_networks() -> list[ipaddress.IPv4Network]:
    done = subprocess.run(["ip", "-j", "-4", "route"], capture_output=True, timeout=30)
    nets = []
    for route in json.loads(done.stdout or b"[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


def remove_cgroups(name: str) -> None:
    """The cgroup folder `name` (at the top of each hierarchy) and everything below it,
    deepest first: a cgroup folder can only be removed once empty of folders and tasks."""
    tops = [*CGROUP_ROOT.glob(f"*/{name}"), CGROUP_ROOT / name]  # hybrid, or pure v2
    for top in (t for t in tops if t.is_dir()):
        below = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for folder in [*below, top]:
            with contextlib.suppress(OSError):
                folder.rmdir()


def cgroup_hierarchies() -> list[Path]:
    """The hierarchies a process is placed in by name: `systemd` and `unified` on a
    hybrid machine like this one, the root itself on a pure cgroup v2 machine."""
    named = [CGROUP_ROOT / h for h in ("systemd", "unified") if (CGROUP_ROOT / h).is_dir()]
    return named or [CGROUP_ROOT]
