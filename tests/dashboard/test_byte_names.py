"""Names are bytes, end to end: any name the filesystem allows goes through claim → process
→ commit → journal → /api/files → the file page → download, and comes back as its bytes."""

from __future__ import annotations

import itertools
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from formats.names import parsed, shown
from tests.conftest import wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

# A name folderd claims: any bytes but "/" and NUL, not hidden, no ignored pattern.
IGNORED_ENDS = (b".part", b".tmp", b".crdownload", b".swp")
names = (
    st.lists(
        st.one_of(
            st.sampled_from(
                [b"\\", b"x", b"\xff", b"\xe9", b"\x80", b"\n", b" ", b"-", b"\xc3\xa9"]
            ),
            st.binary(min_size=1, max_size=1).filter(lambda b: b not in (b"/", b"\0")),
        ),
        min_size=1,
        max_size=20,
    )
    .map(b"".join)
    .filter(lambda n: not n.startswith((b".", b"~")) and not n.endswith(IGNORED_ENDS))
)
_count = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=names)
def test_any_name_goes_through_and_downloads_as_its_bytes(dashboard: Dashboard, raw: bytes) -> None:
    folder = f"e{next(_count)}"  # one folder per example: each name is new
    rel = f"{folder}/{os.fsdecode(raw)}"
    body = f"2024-01-01 12:00:00 ERROR name {shown(rel)!r}\n".encode()
    dashboard.queue.drop(rel, body)

    row = wait_until(lambda: dashboard.find("processed", shown(rel)), 30, f"{rel!r} processed")
    assert (dashboard.queue.dir("processed") / rel).read_bytes() == body

    detail = dashboard.file(row["uid"])
    summary = detail["summary"]
    assert summary["source"] == shown(rel) and summary["status"] == "processed"
    page = dashboard.get(f"/files/{row['uid']}")
    assert page.status_code == 200 and str(escape(shown(rel))) in page.text

    got = dashboard.get(f"/download/watch/processed/{quote(shown(rel), safe='/')}")
    assert got.status_code == 200 and got.content == body
    for out in summary["output_files"]:
        got = dashboard.get(f"/download/results/{quote(out, safe='/')}")
        assert got.status_code == 200, out
        assert got.content == (dashboard.queue.results / parsed(out)).read_bytes()
