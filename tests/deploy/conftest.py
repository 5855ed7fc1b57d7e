"""`make test-deploy`: the Docker image, the systemd unit and the TLS proxy, run for real.

These tests need root, Debian's docker.io, docker-compose, mmdebstrap, systemd-container
and nginx (deploy/test-deploy.sh installs them) and a few minutes; they run only with
TEST_DEPLOY=1 and skip otherwise. Everything they make lives in build/test-deploy/ of the
checkout and is taken down on every way out: a failure, a timeout, Ctrl-C, SIGTERM; what
a killed run left is swept at the start of the next.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.deploy import engine, machine, proxy, rootfs
from tests.deploy.shell import Stopwatch, run

WORK = ROOT / "build" / "test-deploy"
ENABLED = os.environ.get("TEST_DEPLOY") == "1"
KEEP = os.environ.get("TEST_DEPLOY_KEEP") == "1"  # keep build/test-deploy to look into it
_TIMINGS: dict[str, float] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not ENABLED:  # one line in the summary, not one per test
        pytest.skip("make test-deploy runs these (root, Debian packages, minutes)")


def pytest_sessionstart(session: pytest.Session) -> None:
    if ENABLED:
        # A CI runner's SIGTERM unwinds like Ctrl-C: the fixtures take everything down.
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def sweep() -> None:
    """Everything the deployment tests may have left on this machine."""
    engine.sweep(WORK / "docker")
    machine.sweep(WORK / "machine" / "root")
    proxy.sweep(WORK / "proxy")


@pytest.fixture(scope="session")
def work() -> Iterator[Path]:
    """build/test-deploy/, empty: what a killed run left is swept first."""
    if os.geteuid() != 0:
        pytest.fail("make test-deploy needs root: dockerd, systemd-nspawn, mounts, bridges")
    sweep()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    try:
        yield WORK
    finally:
        sweep()
        if not KEEP:
            shutil.rmtree(WORK, ignore_errors=True)


@pytest.fixture(scope="session")
def checkout(work: Path) -> Path:
    """The checkout as a fresh clone has it, as a tarball: tracked files and new ones not
    ignored, as they are now (no .venv, no queue, no build/). Each part unpacks its own."""
    listed = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"], timeout=60).stdout  # fmt: skip
    names = [n for n in listed.split("\0") if n and (ROOT / n).exists()]
    tar = work / "checkout.tar"
    run(["tar", "-C", ROOT, "--null", "-T", "-", "-cf", tar], timeout=120,
        input="\0".join(names))  # fmt: skip
    return tar


@pytest.fixture(scope="session")
def debian(work: Path) -> Path:
    """A minimal Debian with Python and systemd, as a tarball (tests/deploy/rootfs.py)."""
    tar = work / "debian.tar"
    with Stopwatch(_TIMINGS, "Debian tree for both (mmdebstrap)"):
        rootfs.build(tar, work / "debian.log")
    return tar


@pytest.fixture(scope="session")
def timings() -> dict[str, float]:
    """Named durations (seconds) a test measured; printed at the end of the run."""
    return _TIMINGS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    parts: dict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if nodeid.startswith("tests/deploy/") and hasattr(report, "duration"):
                parts[nodeid.split("::")[0].removeprefix("tests/deploy/test_")] += report.duration
    if not any(parts.values()) or not ENABLED:
        return
    write = terminalreporter.write_line
    terminalreporter.section("test-deploy timings")
    for part, seconds in parts.items():
        write(f"{part.removesuffix('.py'):<10} {seconds:6.1f} s")
    write(f"{'total':<10} {sum(parts.values()):6.1f} s")
    for name, seconds in _TIMINGS.items():
        write(f"  {name:<52} {seconds:6.1f} s")
