"""Minimal Debian systems for the deployment tests, built with mmdebstrap from the mirror
this machine already uses (read from its apt sources: no registry host is written here).

mmdebstrap rather than debootstrap: the same minbase system in ~20 s instead of ~90 s here
(it installs with apt in one go, with dpkg's unsafe-io), which keeps `make test-deploy`
within its budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.shell import Log, fail, run

SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
OS_RELEASE = Path("/etc/os-release")
# The extra certificate authorities this machine trusts (a TLS-intercepting proxy's, say):
# a system inside must trust them too, or pip cannot verify PyPI.
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
BUILD_TIMEOUT_S = 600

# One tree serves both parts (one build, not two, on a shared 2-core machine): imported, it
# stands in for the `python:3.11-slim` base image (Debian's Python 3.11; `python` too, the
# HEALTHCHECK calls it; venv for run.sh; certificates for pip); unpacked, it boots with
# systemd as PID 1, with what install.sh and the checks use.
PACKAGES = (
    "python3", "python3-venv", "python-is-python3", "ca-certificates",
    "systemd", "systemd-sysv", "dbus", "procps", "passwd",
)  # fmt: skip
# What a slim image leaves out too: fewer files to unpack on a busy machine.
EXCLUDED = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")


@dataclass(frozen=True)
class Mirror:
    url: str
    suite: str


def machine_mirror() -> Mirror:
    """The first Debian mirror in this machine's apt sources, and its release's suite."""
    url = None
    for path in SOURCES:
        if not path.exists():
            continue
        text = path.read_text()
        found = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE
        )
        if found:
            url = found.group(1)
            break
    release = OS_RELEASE.read_text() if OS_RELEASE.exists() else ""
    suite = re.search(r"^VERSION_CODENAME=\"?(\w+)", release, re.MULTILINE)
    if url is None or suite is None:
        fail(f"no Debian mirror in {', '.join(map(str, SOURCES))} or no VERSION_CODENAME")
    return Mirror(url, suite.group(1))


def _hooks() -> list[str]:
    cas = sorted(EXTRA_CAS.glob("*.crt")) if EXTRA_CAS.is_dir() else []
    if not cas:
        return []
    return [
        "--customize-hook=copy-in " + " ".join(map(str, cas)) + f" {EXTRA_CAS}/",
        '--customize-hook=chroot "$1" update-ca-certificates',
    ]


def build(target: Path, log: Path, packages: tuple[str, ...] = PACKAGES) -> None:
    """A minbase system with `packages` into `target`: a folder, or a tarball when it ends
    in `.tar`. Temp files stay beside it (TMPDIR), so a sweep of the work folder takes them."""
    mirror = machine_mirror()
    tmp = target.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    cmd = [
        "mmdebstrap", "--variant=minbase", "--include=" + ",".join(packages),
        "--dpkgopt=force-unsafe-io", *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDED),
        "--aptopt=Acquire::Languages \"none\"", *_hooks(),
        mirror.suite, str(target), mirror.url,
    ]  # fmt: skip
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
    done = run(["sh", "-c", 'exec "$@" >>"$0" 2>&1', str(log), *cmd], timeout=BUILD_TIMEOUT_S,
               env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": str(tmp)},
               logs=[Log.file(log)], check=False)  # fmt: skip
    if done.returncode != 0:
        fail(f"mmdebstrap {target.name}: exit {done.returncode}", Log.file(log))
