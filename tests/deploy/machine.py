"""A Debian machine booted with systemd (systemd-nspawn -b) for the tests of the unit.

It shares the host's network (pip inside reaches PyPI; its ports are the host's, so the
tests give the service a free one). nspawn runs in a cgroup folder of the tests' own, so
what it creates there (`payload/`, `supervisor/`) goes with it; `poweroff()` shuts it
down, `sweep()` takes what a killed run left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.deploy import host
from tests.deploy.shell import Log, fail, run, wait_for

NAME = "folderd-test"
CGROUP = "folderd-test-machine"
PROPAGATE = Path("/run/systemd/nspawn/propagate") / NAME
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT_S = 120
POWEROFF_TIMEOUT_S = 60


class Machine:
    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.log_path = work / "nspawn.log"
        self.console = Log.file(self.log_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self.leader = 0  # the container's PID 1 (systemd), as this machine numbers it

    def boot(self) -> None:
        cgroups = [h / CGROUP for h in host.cgroup_hierarchies()]
        for folder in cgroups:
            folder.mkdir(exist_ok=True)

        def enter_cgroups() -> None:  # in the child, before exec: nspawn starts inside ours
            for folder in cgroups:
                (folder / "cgroup.procs").write_text(str(os.getpid()))

        cmd = [
            "systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
            "--console=passive", f"--machine={NAME}",
        ]  # fmt: skip
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=enter_cgroups, start_new_session=True,
            )  # fmt: skip
        self.leader = wait_for(self._find_leader, BOOT_TIMEOUT_S, "the container's systemd",
                               self.console)  # fmt: skip
        # "starting" while it boots; no answer at all until its systemd listens
        state = wait_for(self._booted, BOOT_TIMEOUT_S, "the machine to boot", self.console)
        if state == "degraded":
            failed = self.sh("systemctl --failed --no-legend --plain", check=False).stdout
            print(f"note: the test machine booted degraded; failed units:\n{failed}")

    def _booted(self) -> str | None:
        state = self.sh("systemctl is-system-running", check=False).stdout.strip()
        return state if state in ("running", "degraded") else None

    def _find_leader(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            fail("systemd-nspawn exited", self.console)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
            pids = children.read_text().split()
            if pids and Path(f"/proc/{pids[0]}/exe").resolve().name == "systemd":
                return int(pids[0])
        return None

    def sh(
        self, script: str, *, timeout: float = 60, check: bool = True, user: str | None = None,
        logs: tuple[Log, ...] = (),
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run a shell script inside, as root (or `user`), with a clean environment."""
        cmd = ["bash", "-c", script]
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        return run(
            ["nsenter", "-t", str(self.leader), "-a",
             "env", "-i", f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8", *cmd],
            timeout=timeout, check=check, logs=[*logs, self.console],
        )  # fmt: skip

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """`systemctl show` of `unit`: the properties asked for, as text."""
        out = self.sh(f"systemctl show {shlex.quote(unit)} -p {','.join(props)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str, *args: str) -> list[dict[str, Any]]:
        """The journal entries of `unit` (journalctl -o json), oldest first."""
        quoted = " ".join(shlex.quote(a) for a in args)
        out = self.sh(f"journalctl -u {shlex.quote(unit)} -o json --no-pager {quoted}").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def journal_log(self, unit: str) -> Log:
        return Log(
            f"journalctl -u {unit}",
            lambda: (
                self.sh(
                    f"journalctl -u {shlex.quote(unit)} -o cat --no-pager -n 60", check=False
                ).stdout
            ),
        )

    def path(self, inside: str) -> Path:
        """A path of the machine, seen from here (its root is a folder of ours)."""
        return self.root / inside.lstrip("/")

    def poweroff(self) -> None:
        """SIGTERM to nspawn is a clean poweroff of the machine (one sent before its
        systemd listens is lost, so it is repeated); SIGKILL at the deadline."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            deadline = time.monotonic() + POWEROFF_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        sweep(self.root)


def sweep(root: Path) -> None:
    """What a machine on `root` left, even from a killed run: nspawn itself (its command
    line names the root; the container's processes die with it), mounts, the cgroup
    folders, and nspawn's propagation folder."""
    host.kill_processes_naming(root)
    host.unmount_under(root)
    host.remove_cgroups(CGROUP)
    with contextlib.suppress(FileNotFoundError):
        for child in sorted(PROPAGATE.rglob("*"), key=lambda p: -len(p.parts)):
            child.rmdir() if child.is_dir() else child.unlink()
        PROPAGATE.rmdir()
