"""Names are bytes in a source too: a source whose folder and files have names that are not
UTF-8 is walked, processed, journalled and shown (`formats.names.shown`), its files'
results keep their exact bytes, and `/api/sources`, the Sources page and each file's
page answer for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.sources.runtime import uid_of
from formats.names import shown
from tests.conftest import ROOT, Queue, sha256_of, wait_until
from tests.daemon.sources_helpers import entries, sources_config, wait_version
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

LATIN1 = os.fsdecode(b"caf\xe9.log")  # café in Latin-1: not UTF-8
FOLDER = os.fsdecode(b"d\xff")
TOKEN = "names-token"
ODD = os.fsdecode(b"back\\x41 \n-x\xfe.log")  # a literal `\x41`, a newline, a leading-ish `-`


def test_a_source_of_non_utf8_names_is_processed_and_shown(
    start_dashboard: Callable[..., Dashboard], queue: Queue, tmp_path: Path
) -> None:
    src = tmp_path / os.fsdecode(b"src\xe9")  # the source's own folder is not UTF-8 either
    (src / FOLDER).mkdir(parents=True)
    (src / LATIN1).write_text("one\n")
    (src / FOLDER / ODD).write_text("two\n")
    (src / "bad.log").write_bytes(b"\xff\xfe\n")  # fails: the page lists its error
    roots = tmp_path / "roots"
    (roots / LATIN1).mkdir(parents=True)  # a folder for a job: its name is not UTF-8
    (roots / LATIN1 / LATIN1).write_text("job\n")
    cfg = sources_config(tmp_path / "c.json", [{"name": "n", "path": str(src), "rescan_s": 1}])
    dash = start_dashboard("--config", str(cfg), "--source-roots", str(roots),
                           env={"FOLDERD_TOKEN": TOKEN})  # fmt: skip
    inner = f"{FOLDER}/{ODD}"
    for rel, text in ((LATIN1, "one\n"), (inner, "two\n")):
        s = wait_version(queue, "n", rel, 1)
        assert s["status"] == "processed" and s["origin"]["path"] == shown(rel)
        assert s["sha256"] == sha256_of(src / rel)
        assert (queue.results / "sources" / "n" / f"{rel}.out").read_text() == text
    assert wait_version(queue, "n", "bad.log", 1)["status"] == "failed"
    assert set(entries(queue, "n")) == {LATIN1, inner, "bad.log"}

    def counted() -> dict[str, Any] | None:  # the summaries are written before the counts
        listed = dash.get("/api/sources")
        assert listed.status_code == 200, listed.text
        (source,) = listed.json()["sources"]
        return source if source["files"] == {"done": 2, "failed": 1} else None

    source = wait_until(counted, 10, "/api/sources counting 2 done, 1 failed")
    assert source["path"] == shown(str(src))
    assert [e["path"] for e in source["last_errors"]] == ["bad.log"]
    page = dash.get("/sources")
    assert page.status_code == 200 and shown(str(src)) in page.text

    uid = uid_of("n", inner)
    row = dash.file(uid)  # the file's page data: its source and version, names as shown
    assert row["rel"] == shown(f"sources/n/{inner}"), row
    assert dash.get(f"/files/{uid}").status_code == 200

    (src / LATIN1).write_text("one, changed\n")  # a new version of a non-UTF-8 name
    assert wait_version(queue, "n", LATIN1, 2)["status"] == "processed"
    (src / FOLDER / ODD).unlink()  # deleted: shown so, results kept
    wait_until(lambda: entries(queue, "n").get(inner) == ("deleted", 1), 30, "deleted")
    assert dash.get("/api/sources").status_code == 200
    assert dash.daemon.events("source_file_deleted")[0]["path"] == shown(inner)

    port = dash.url.rsplit(":", 1)[1]  # --sync of a folder whose name is not UTF-8
    cli = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--port", port, "--sync",
         os.fsencode(roots / LATIN1), "--wait"], capture_output=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "FOLDERD_TOKEN": TOKEN},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    job = json.loads(cli.stdout)
    assert job["state"] == "done" and job["done_files"] == 1
    adhoc = next(s for s in dash.get("/api/sources").json()["sources"] if s["adhoc"])
    assert adhoc["path"] == shown(str(roots / LATIN1))
    assert wait_version(queue, adhoc["name"], LATIN1, 1)["status"] == "processed"
    r = dash.post("/api/sources", json={"path": shown(str(roots / "nowhere\udcff"))},
                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 404 and r.json()["error"].endswith("nowhere\\xff")
