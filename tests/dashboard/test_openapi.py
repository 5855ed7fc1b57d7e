"""The JSON API's schema (`/api/openapi.json`): it describes every `/api` route, and a
schema-based fuzzer (schemathesis) against a live daemon finds no answer outside it — no
500, no undocumented status or shape — and no file moved by a request that was refused."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from dashboard import openapi
from dashboard.app import routes
from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

EXAMPLES = 25  # per operation and generation mode: about 450 requests in all
BUDGET_S = 90  # the whole run, shrinking a failure included
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
LOG = "2024-01-05 10:00:01 [INFO] API: request handled in 5 ms\n"


def test_every_api_route_is_in_the_schema_and_nothing_else() -> None:
    served = {
        (route.path, method.lower())
        for route in routes
        if isinstance(route, Route) and route.path.startswith("/api/")
        for method in route.methods or ()
        if method != "HEAD"  # Starlette adds it to every GET
    }
    described = set(openapi.OPERATIONS)
    assert served - described == set(), "add these routes to dashboard/openapi.py"
    assert described - served == set(), "dashboard/openapi.py describes routes that are gone"


def test_every_referenced_schema_is_declared() -> None:
    text = str(openapi.document())
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in openapi.SCHEMAS, name


@pytest.mark.integration
def test_the_schema_is_served(dashboard: Dashboard) -> None:
    r = dashboard.get("/api/openapi.json")
    assert r.status_code == 200 and r.json() == openapi.document()
    # errors the router gives are the API's JSON errors too
    for method, path, status in (("get", "/api/nope", 404), ("put", "/api/status", 405)):
        r = dashboard.http.request(method, path)
        assert (r.status_code, r.headers["content-type"]) == (status, "application/json")
        assert r.json() == {"error": "Not Found" if status == 404 else "Method Not Allowed"}


def _tree(queue: Queue) -> dict[str, tuple[int, int]]:
    """Every entry under watch_dir (hidden ones too: staged uploads), with its inode and
    size; the journal's folder aside (reads touch its WAL)."""
    found = {}
    for dirpath, dirnames, names in os.walk(queue.root):
        dirnames[:] = [d for d in dirnames if d != ".folderd"]
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            found[os.path.relpath(os.path.join(dirpath, name), queue.root)] = (
                st.st_ino,
                st.st_size,
            )
    return found


@pytest.fixture
def seeded(start_dashboard: Callable[..., Dashboard], queue: Queue) -> Dashboard:
    """A daemon with files in processed/ and failed/ (journalled), then restarted so it
    claims nothing more by itself: whatever moves, a request moved."""
    first = start_dashboard()
    for name, data in (("web01_20240105.log", LOG), ("empty.log", ""), ("two.log", "")):
        queue.drop(name, data)
    wait_until(lambda: len(queue.files("processed")) + len(queue.files("failed")) == 3, 30,
               "the seed files done")  # fmt: skip
    first.daemon.signal(signal.SIGTERM)
    assert first.daemon.wait_exit() == 0
    return start_dashboard("--settle", "3600", "--settle-renames", "--max-upload-mb", "1")


@pytest.mark.integration
@pytest.mark.timeout(BUDGET_S + 60)
@pytest.mark.serial
def test_the_fuzzed_api_answers_within_its_schema_and_moves_nothing_it_refused(
    seeded: Dashboard, queue: Queue
) -> None:
    schema = schemathesis.openapi.from_url(seeded.url + "/api/openapi.json")
    session = requests.Session()
    deadline = time.monotonic() + BUDGET_S
    sent: Counter[tuple[GenerationMode, bool]] = Counter()  # (mode, refused): requests

    def fuzzer(operation: Any, mode: GenerationMode) -> Callable[[], None]:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            if time.monotonic() > deadline:
                pytest.fail(f"the fuzzing took over {BUDGET_S} s")
            before = _tree(queue)
            response = case.call(session=session, timeout=30)
            case.validate_response(response, checks=CHECKS)
            refused = response.status_code >= 400
            sent[mode, refused] += 1
            if refused:
                assert _tree(queue) == before, f"{case.operation.label} refused, moved files"

        return fuzz

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzzer(operation, mode)()
            except Unsatisfiable:  # no input, or only strings of any form: nothing to break
                if mode is GenerationMode.POSITIVE:
                    raise
    # both kinds of data were sent, and both kinds of answer came
    assert sent[GenerationMode.NEGATIVE, True] > 100
    assert sent[GenerationMode.POSITIVE, False] > 50 and sent[GenerationMode.POSITIVE, True]
    assert seeded.daemon.proc.poll() is None


@pytest.mark.integration
def test_refusals_that_come_after_a_file_was_staged_move_nothing(
    seeded: Dashboard, queue: Queue
) -> None:
    """What generated data seldom reaches: refused once a part is already on disk."""
    failed = seeded.find("failed", "empty.log")
    processed = seeded.find("processed", "web01_20240105.log")
    assert failed and processed
    before = _tree(queue)
    files = [("file", ("ok.log", LOG.encode())), ("file", ("second.part", b"x\n"))]
    for r, status in (
        (seeded.http.post("/api/upload", files=files), 400),  # the second part's name
        (seeded.upload("big.log", b"x" * (3 << 19)), 413),  # 1.5 MB, over --max-upload-mb
        (seeded.post(f"/api/files/{processed['uid']}/requeue"), 409),
        (seeded.post("/api/cancel", json={"path": "../failed/empty.log"}), 400),
        (seeded.post("/api/cancel", json={"path": "web01_20240105.log"}), 404),
        (seeded.post("/api/errors/replay", json={"expect": 5}), 409),
    ):
        assert r.status_code == status, r.text
        assert _tree(queue) == before
    assert seeded.post(f"/api/files/{failed['uid']}/requeue").status_code == 200
    assert _tree(queue) != before  # what a request that was not refused does
