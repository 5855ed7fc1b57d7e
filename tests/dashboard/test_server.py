"""The dashboard server's descriptor budget, in-process and in a child with a low limit."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from daemon import DaemonError
from dashboard import server
from tests.conftest import ROOT


def test_connections_fit_under_the_open_file_limit() -> None:
    assert server.connection_limit(256, nofile=65536, in_use=40) == 256
    # each connection may hold two descriptors; the daemon keeps a reserve and the accept burst
    room = (1024 - 40 - server.RESERVED_FDS - server.ACCEPT_BURST) // server.FDS_PER_CONNECTION
    assert server.connection_limit(1000, nofile=1024, in_use=40) == room < 1000
    with pytest.raises(DaemonError, match=r"open-file limit \(256, 40 in use\).*LimitNOFILE="):
        server.connection_limit(256, nofile=256, in_use=40)


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = min(hard, 256)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    code = (
        "import resource; from dashboard.server import raise_open_file_limit as r;"
        "print(r(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
        preexec_fn=lower, timeout=60,
    ).stdout.split()  # fmt: skip
    expected = hard if hard != resource.RLIM_INFINITY else soft
    assert [int(v) for v in out] == [expected, expected, hard]
