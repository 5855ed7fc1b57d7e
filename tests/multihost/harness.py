"""Hosts on one machine: network namespaces joined by a bridge, a server sharing a folder
over SFTP, and each host mounting it with sshfs, as separate machines on a LAN would.

    with Lan(base, ["h0", "h1", "h2"]) as lan:         # + a server namespace, "srv"
        export = lan.serve(base / "export")           # sshd on the server's address
        mnt = lan.mount("h0", export, base / "h0")    # sshfs inside h0's network

Each host is a network namespace with one veth end (`eth0`, 192.168.77.x/24); the other
ends hang on a bridge in a namespace of its own, so the machine's own network is never
touched. Processes are put on a host by `Lan.on(host)`, a command prefix: `nsenter` into
its network, `unshare` for a host name of its own. The sshfs of a host runs inside its
network, so its traffic crosses the bridge; its mount is an ordinary one, visible from
the machine — look at the share through the export, never through a host's mount (a host
may be frozen, and its mount with it).

Everything is undone on every way out: processes in the namespaces killed, mounts taken
down (lazily if they are busy), namespaces (and so the veths) deleted. Namespaces are
named after the owning process (`fdm<pid>x<n>-…`); a run killed before it could clean
up is cleaned by the next one (`sweep`).
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SUBNET = "192.168.77"
SERVER = "srv"
TOOLS = ("ip", "nsenter", "unshare", "sshd", "sshfs", "ssh-keygen")
# sshfs's own caches keep directory listings and attributes for 20 s by default: a host
# would not see files other hosts drop or move meanwhile (docs/operations/shared.md).
SSHFS_OPTIONS = ("dir_cache=no",)
_NAME = re.compile(r"^fdm(\d+)x\d+-")
_seq = itertools.count()


class Unavailable(Exception):
    """This machine cannot host the namespaces (a tool missing, not root, no FUSE)."""


def tool(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )


def missing() -> str | None:
    """Why this machine cannot run a Lan, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    gone = [t for t in (*TOOLS, "fusermount3") if tool(t) is None]
    if gone:
        return f"missing {', '.join(gone)} (.ci/run installs iproute2, sshfs, openssh-server)"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    return None


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(str(tool("ip")), *args, check=check)


def _pids(ns: str) -> list[int]:
    out = _ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def unmount(mnt: Path, timeout: float = 20) -> None:
    """Take an sshfs mount down; lazily if something still holds a file open there."""
    deadline = time.monotonic() + timeout
    while _mounted(mnt):
        if _run(str(tool("fusermount3")), "-u", str(mnt), check=False).returncode == 0:
            return
        if time.monotonic() > deadline:
            _run(str(tool("fusermount3")), "-uz", str(mnt), check=False)
            return
        time.sleep(0.2)


def _mounted(mnt: Path) -> bool:
    target = os.path.realpath(mnt).replace(" ", "\\040")
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def sweep() -> None:
    """Undo what runs killed before their cleanup left: their namespaces and mounts."""
    for ns in _ip("netns", "list", check=False).stdout.split():
        m = _NAME.match(ns)
        if m and not _alive(int(m.group(1))):
            for pid in _pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if " - fuse.sshfs " in line]
    for point in points:
        m = re.search(r"/folderd-lan-(\d+)-", point)
        if m and not _alive(int(m.group(1))):
            _run(str(tool("fusermount3")), "-uz", point.replace("\\040", " "), check=False)


class Lan:
    """A bridge, a server and `hosts`, each a network namespace (see the module)."""

    def __init__(self, base: Path, hosts: list[str]) -> None:
        why = missing()
        if why:
            raise Unavailable(why)
        self.base = base
        self.hosts = list(hosts)
        self.prefix = f"fdm{os.getpid()}x{next(_seq)}"
        self._namespaces: list[str] = []
        self._mounts: list[tuple[Path, subprocess.Popen[bytes]]] = []
        self._sshd: subprocess.Popen[bytes] | None = None
        self._sshd_log: Path | None = None
        self._term: object = signal.SIG_DFL  # the SIGTERM handler before ours
        self.address = {name: f"{SUBNET}.{10 + i}" for i, name in enumerate(self.hosts)}
        self.address[SERVER] = f"{SUBNET}.1"

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def __enter__(self) -> Lan:
        sweep()
        # SIGTERM (a CI runner giving up, `timeout`) unwinds like Ctrl-C, so the cleanup
        # below runs; SIGKILL cannot be caught: the next run's `sweep` cleans up then.
        self._term = signal.signal(signal.SIGTERM, _terminate)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        signal.signal(signal.SIGTERM, self._term)  # type: ignore[arg-type]

    def _build(self) -> None:
        bridge = self.ns("br")
        self._add_ns(bridge)
        _ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", bridge, "link", "set", "br0", "up")
        for i, host in enumerate([SERVER, *self.hosts]):
            ns = self.ns(host)
            self._add_ns(ns)
            _ip("-n", bridge, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0",
                "netns", ns)  # fmt: skip
            _ip("-n", bridge, "link", "set", f"v{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.address[host]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._namespaces.append(ns)

    def on(self, host: str) -> tuple[str, ...]:
        """A command prefix that runs the command on `host`: in its network, under its
        own host name (the command keeps its PID: nothing forks)."""
        return (str(tool("nsenter")), f"--net=/run/netns/{self.ns(host)}", str(tool("unshare")),
                "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', host)  # fmt: skip

    # -- the server --------------------------------------------------------------
    def serve(self, export: Path) -> Path:
        """Share `export` over SFTP from the server (sshd on its address, port 22 of its
        own network); returns `export`."""
        keys = self.base / "keys"
        keys.mkdir(exist_ok=True)
        for name in ("host_key", "client_key"):
            if not (keys / name).exists():
                _run(str(tool("ssh-keygen")), "-q", "-t", "ed25519", "-N", "", "-f",
                     str(keys / name))  # fmt: skip
        (keys / "authorized_keys").write_bytes((keys / "client_key.pub").read_bytes())
        (keys / "sshd_config").write_text(
            f"Port 22\nListenAddress {self.address[SERVER]}\nHostKey {keys / 'host_key'}\n"
            f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPasswordAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            f"PidFile {keys / 'sshd.pid'}\nSubsystem sftp internal-sftp\nMaxStartups 50\n"
        )
        os.makedirs("/run/sshd", exist_ok=True)  # its privilege separation folder
        self._sshd_log = self.base / "sshd.log"
        with self._sshd_log.open("wb") as log:
            self._sshd = subprocess.Popen(
                [*self.on(SERVER), str(tool("sshd")), "-D", "-e", "-f", str(keys / "sshd_config")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._wait(lambda: self._accepts(SERVER, 22), 30, "sshd listening")
        export.mkdir(parents=True, exist_ok=True)
        return export

    def _accepts(self, host: str, port: int) -> bool:
        probe = ("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), "
                 "timeout=1).close()")  # fmt: skip
        cmd = [*self.on(host), sys.executable, "-c", probe, self.address[host], str(port)]
        return _run(*cmd, check=False).returncode == 0

    def mount(self, host: str, export: Path, options: tuple[str, ...] = SSHFS_OPTIONS) -> Path:
        """Mount the server's `export` by sshfs from inside `host`'s network; the mount
        point (named so that `sweep` knows whose it is)."""
        mnt = self.base / f"folderd-lan-{os.getpid()}-{self.prefix}-{host}"
        mnt.mkdir(parents=True, exist_ok=True)
        keys = self.base / "keys"
        opts = ",".join([
            f"IdentityFile={keys / 'client_key'}", "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null", "BatchMode=yes", "ServerAliveInterval=15",
            *options,
        ])  # fmt: skip
        remote = f"{getpass.getuser()}@{self.address[SERVER]}:{export}"
        log = (self.base / f"sshfs-{host}.log").open("wb")
        # In the foreground, as this process's child: reaped here when it ends (a daemon
        # would be left to an init that may not reap it).
        proc = subprocess.Popen([*self.on(host), str(tool("sshfs")), "-f", "-o", opts, remote,
                                 str(mnt)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        log.close()
        self._mounts.append((mnt, proc))
        self._wait(lambda: _mounted(mnt) or proc.poll() is not None, 60, f"{host}'s sshfs")
        if proc.poll() is not None:
            raise RuntimeError(f"sshfs on {host} exited {proc.returncode}: see {log.name}")
        return mnt

    # -- freezing a host ---------------------------------------------------------------
    def pids(self, host: str) -> list[int]:
        """Every process on `host` (its sshfs included)."""
        return _pids(self.ns(host))

    def freeze(self, host: str) -> list[int]:
        """SIGSTOP every process of `host`, until none is left running (a process forked
        meanwhile is stopped too); the PIDs stopped."""
        stopped: set[int] = set()
        for _ in range(20):
            new = [p for p in self.pids(host) if p not in stopped]
            if not new:
                break
            for pid in new:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
        return sorted(stopped)

    def thaw(self, host: str) -> None:
        for pid in self.pids(host):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    # -- cleaning up -------------------------------------------------------------------
    def close(self) -> None:
        """Undo everything, whatever state it is in: never raises."""
        for ns in self._namespaces:  # thawed first: a stopped process ignores nothing but
            for pid in _pids(ns):  # SIGKILL, and a stopped sshfs would hang the unmount
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        for mnt, _ in self._mounts:
            with contextlib.suppress(Exception):
                unmount(mnt)
        for ns in self._namespaces:
            for pid in _pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for proc in [self._sshd, *(p for _, p in self._mounts)]:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.kill()
                    proc.wait(10)
        for ns in reversed(self._namespaces):
            _ip("netns", "del", ns, check=False)
        self._namespaces.clear()
        self._mounts.clear()

    @staticmethod
    def _wait(predicate: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)
