"""`http_lookup` end to end against a real local API: `main.py --input` on a CSV of IDs,
and the daemon with two workers sharing one rate limit; `--input` against a server that
drips its answer (ends at the deadline) and one answering 1 GB (refused, memory small)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, DaemonProcess, Queue, wait_until
from tests.hostile_servers import Hostile
from tests.processors.lookup_api import Api, serve

pytestmark = pytest.mark.integration


def test_a_csv_of_ids_is_enriched_in_order_with_misses_routed(tmp_path: Path) -> None:
    ids = [f"x{i}" if i % 10 == 7 else str(i) for i in range(60)]
    src = tmp_path / "ids.csv"
    src.write_text("id,qty\n" + "".join(f"{i},{n}\n" for n, i in enumerate(ids)))
    with serve(Api(delay_s=0.005)) as api:
        lookup = {
            "url": api.url + "/item/{id}",
            "headers": {"X-Api-Key": "${LOOKUP_KEY}"},
            "concurrency": 4,
            "rate_per_s": 200,
            "merge": ".",
            "route": [{"status": 404, "tag": "missing"}],
            "failed_tag": "nolookup",
        }
        config = {
            "routes": [
                {"glob": "*.csv", "start": "ids", "reader": {"type": "csv", "header": True}}
            ],
            "nodes": [{"name": "enrich", "tag": "ids", "use": "http_lookup", "options": lookup}],
            "outputs": {"missing": {}, "nolookup": {}},
        }
        (tmp_path / "pipeline.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
        env["LOOKUP_KEY"] = "k-3f9a-secret"
        run = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "--log-format", "json", "--input", str(src),
             "--config", str(tmp_path / "pipeline.json"), "--results-dir", str(tmp_path / "out")],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "processed" and summary["lines_in"] == 60
    assert summary["outputs"] == {"out": 54, "missing": 6}
    assert summary["aggregates"]["enrich"]["requests"] == 60
    found = [
        orjson.loads(line) for line in (tmp_path / "out" / "ids.csv.out").read_text().splitlines()
    ]
    assert [r["id"] for r in found] == [i for i in ids if not i.startswith("x")]
    assert found[0] == {"id": "0", "qty": "0", "name": "item-0"}
    missing = (tmp_path / "out" / "ids.csv.missing").read_text().splitlines()
    assert [orjson.loads(line)["id"] for line in missing] == [i for i in ids if i.startswith("x")]
    assert api.api_keys == {"k-3f9a-secret"}
    assert "k-3f9a-secret" not in run.stdout + run.stderr, "the secret is never logged"


def test_the_rate_limit_holds_across_the_daemon_s_workers(
    queue: Queue, start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    with serve(Api()) as api:
        lookup = {"url": api.url + "/item/{id}", "rate_per_s": 10, "concurrency": 4}
        config = {
            "routes": [{"start": "ids", "reader": {"type": "csv", "header": True}}],
            "nodes": [{"name": "enrich", "tag": "ids", "use": "http_lookup", "options": lookup}],
        }
        (tmp_path / "pipeline.json").write_text(json.dumps(config))
        names = "abcd"  # more files than workers: each worker also holds one job ahead
        for name in names:
            queue.drop(f"{name}.csv", "id\n" + "".join(f"{name}{i}\n" for i in range(10)))
        start_daemon("--config", str(tmp_path / "pipeline.json"), "--workers", "2")
        wait_until(lambda: len(queue.files("processed")) == 4, 60, "every file processed")
    assert all(s["status"] == "processed" for s in queue.summaries().values())
    times = {n: [t for t, path in api.times if path.startswith(f"/item/{n}")] for n in names}
    assert [len(t) for t in times.values()] == [10] * 4
    spans = sorted((min(t), max(t)) for t in times.values())
    assert any(b[0] < a[1] for a, b in pairwise(spans)), "two workers looked up at the same time"
    # two workers alone at 10/s each would take 2 s; sharing the limit, 40 requests take 3.9 s
    assert spans[-1][1] - spans[0][0] >= 3.5


def _input(
    tmp_path: Path, lookup: dict[str, object], data: str, prefix: tuple[str, ...] = ()
) -> tuple[int, dict[str, object], int, float]:
    """`main.py --input` on `data` (JSON lines) with one lookup node: exit code, summary,
    the process's peak RSS (bytes) and its wall time. `prefix` runs it inside a command."""
    config = {
        "routes": [{"start": "in"}],
        "nodes": [
            {"tag": "in", "use": "json_validate", "to": "look"},
            {"name": "enrich", "tag": "look", "use": "http_lookup", "options": lookup},
        ],
    }
    (tmp_path / "pipeline.json").write_text(json.dumps(config))
    src = tmp_path / "ids.log"
    src.write_text(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    started = time.monotonic()
    run = subprocess.run(
        [*prefix, sys.executable, "-c", _PEAK, sys.executable, str(ROOT / "main.py"),
         "--log-format", "json", "--input", str(src), "--config", str(tmp_path / "pipeline.json"),
         "--results-dir", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    code, peak = (int(x) for x in run.stderr.split()[-2:])
    summary = run.stdout[run.stdout.index(b"{\n") :]  # after the log lines (one a line)
    return code, json.loads(summary), peak, took


# A small process runs the command and reports its peak RSS: a child forked from pytest
# itself would count pytest's own peak (Linux keeps it in ru_maxrss across the exec).
_PEAK = """import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, file=sys.stderr)
"""


@pytest.mark.serial
def test_input_with_a_dripping_lookup_server_ends_at_the_deadline(tmp_path: Path) -> None:
    """The issue's case: `timeout_s` 3, `retries` 1, a server answering 200 with
    Content-Length 100000 then one byte a second — `--input` used to run for hours."""
    with Hostile("drip", interval=1.0) as server:
        lookup = {"url": server.url + "/{id}", "timeout_s": 3, "retries": 1, "backoff_s": 0.1}
        code, summary, _, took = _input(tmp_path, lookup, '{"id": 1}\n')
    assert code == 0 and summary["status"] == "processed"
    got = orjson.loads((tmp_path / "out" / "ids.log.out").read_text())
    assert got["lookup_error"] == (
        "timed out: no complete answer within 3 s (timeout_s) after 2 attempt(s)"
    )
    assert took < 15, f"{took:.1f} s: two attempts of 3 s, then the answer"


@pytest.mark.serial
def test_input_with_a_1gb_lookup_answer_stays_small(tmp_path: Path) -> None:
    with serve(Api()) as api:
        lookup = {"url": api.url + "/chunked/{id}"}
        code, _, peak, _ = _input(tmp_path, lookup, f'{{"id": {1 << 30}}}\n')
    assert code == 0
    got = orjson.loads((tmp_path / "out" / "ids.log.out").read_text())
    assert got["lookup_error"] == "response larger than 1048576 bytes (max_response_bytes)"
    assert peak < 200 << 20, f"peak RSS {peak >> 20} MB: the answer was not read whole"


# A host whose resolver takes every query and never answers: its own network (only lo) and
# its own /etc/resolv.conf, naming a UDP listener on 127.0.0.1:53 that reads and drops. The
# listener binds before the shell goes on (its parent exits once it is bound), lets go of
# the output the test reads, and ends with the command (argv[1], the shell's pid).
_SILENT_DNS = """import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(0.2)
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
while os.path.exists(f"/proc/{sys.argv[1]}"):
    try:
        s.recv(512)
    except TimeoutError:
        pass
"""


@pytest.mark.serial
def test_input_with_a_resolver_that_never_answers_ends_at_the_deadline(tmp_path: Path) -> None:
    """Resolving the host is part of the deadline: the system resolver would wait 2 x 5 s."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a network and a resolv.conf of its own")
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
    setup = (f"ip link set lo up && mount --bind {tmp_path / 'resolv.conf'} /etc/resolv.conf"
             f' && {sys.executable} -c "$SILENT" $$ && exec "$@"')  # fmt: skip
    prefix = ("env", f"SILENT={_SILENT_DNS}", "unshare", "--net", "--mount", "--",
              "sh", "-c", setup, "sh")  # fmt: skip
    lookup = {"url": "http://api.never-answers.test/{id}", "timeout_s": 1, "retries": 0}
    code, summary, _, took = _input(tmp_path, lookup, '{"id": 1}\n', prefix)
    assert code == 0 and summary["status"] == "processed"
    got = orjson.loads((tmp_path / "out" / "ids.log.out").read_text())
    assert got["lookup_error"] == (
        "timed out: no complete answer within 1 s (timeout_s) after 1 attempt(s)"
    )
    assert took < 8, f"{took:.1f} s: the resolver's 10 s were not waited for"
