"""The dashboard over real HTTP, served by a real daemon process: probes, the JSON API,
live events, uploads, actions, and what it refuses."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

LOG = "[INFO] API: request handled in 5 ms\n[ERROR] DB: connection lost\n[WARN] Cache: miss\n"


def _processed(dash: Dashboard, rel: str) -> dict[str, Any]:
    return wait_until(lambda: dash.find("processed", rel), 30, f"{rel} processed")


def _failed(dash: Dashboard, rel: str) -> dict[str, Any]:
    return wait_until(lambda: dash.find("failed", rel), 30, f"{rel} failed")


def test_health_status_and_metrics(dashboard: Dashboard) -> None:
    dashboard.queue.drop("web_20240101.log", LOG)
    _processed(dashboard, "web_20240101.log")

    r = dashboard.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "healthy"
    names = {c["name"] for c in body["checks"]}
    assert {"watcher", "workers", "journal", "disk_watch_dir", "disk_results", "loop"} <= names
    assert all(c["ok"] for c in body["checks"])

    st = dashboard.get("/api/status").json()
    assert st["counts"]["processed"] == 1
    assert st["version"] and st["uptime_s"] > 0
    assert set(st["states"]) == {"unprocessed", "underprocess", "processed", "failed", "missing"}
    assert "pipeline:" in st["pipeline_outline"]
    wait_until(lambda: dashboard.get("/api/status").json()["system"].get("sampled_at"), 10,
               "a system sample")  # fmt: skip
    st = dashboard.get("/api/status").json()
    assert st["system"]["memory_rss_bytes"] > 0
    assert st["system"]["disk"]["watch_dir"]["free_bytes"] > 0

    def metrics() -> str | None:
        text = dashboard.get("/metrics").text
        return text if 'folderd_files{state="processed"} 1.0' in text else None

    text = wait_until(metrics, 10, "journal totals in /metrics")
    for name in (
        "folderd_files_processed_total 1.0",
        "folderd_files_failed_total",
        "folderd_processing_duration_seconds_bucket",
        'folderd_lines_total{tag="log"} 3.0',
        "folderd_bytes_processed_total",
        "folderd_oldest_queued_age_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "folderd_worker_deaths_total 0.0",
        "folderd_watcher_overflows_total 0.0",
        "folderd_watcher_restarts_total 0.0",
    ):
        assert name in text, name


def test_health_is_503_with_reasons_when_disk_is_short(start_dashboard: Any) -> None:
    dash = start_dashboard("--min-disk-free-mb", str(1 << 40))

    def failing() -> set[str]:
        r = dash.get("/health")
        assert r.status_code == 503
        return {c["name"] for c in r.json()["checks"] if not c["ok"]}

    # The disk checks fail at once; the loop's next tick (within 1 s) pauses claiming too.
    expected = {"disk_watch_dir", "disk_results", "paused"}
    wait_until(lambda: failing() == expected, 10, "claiming paused below the floor")


def test_files_detail_errors_and_downloads(dashboard: Dashboard, queue: Queue) -> None:
    queue.drop("app_20240102.log", LOG)
    queue.drop("empty.log", b"")
    row = _processed(dashboard, "app_20240102.log")
    bad = _failed(dashboard, "empty.log")

    page = dashboard.get("/api/files").json()
    assert [f["rel"] for f in page["files"]][:2] == ["app_20240102.log", "empty.log"] or [
        f["rel"] for f in page["files"]
    ][:2] == ["empty.log", "app_20240102.log"]
    only_failed = dashboard.get("/api/files", params={"state": "failed"}).json()["files"]
    assert [f["rel"] for f in only_failed] == ["empty.log"]
    found = dashboard.get("/api/files", params={"q": "0102"}).json()["files"]
    assert [f["rel"] for f in found] == ["app_20240102.log"]
    assert dashboard.get("/api/files", params={"state": "nope"}).status_code == 400

    detail = dashboard.file(row["uid"])
    assert [t["to_state"] for t in detail["timeline"]] == ["underprocess", "processed"]
    assert detail["summary"]["tags"]["log"] == 3
    assert detail["summary"]["metadata"] == {"host": "app", "date": "20240102"}
    assert detail["input_path"] == "processed/app_20240102.log"

    r = dashboard.get(f"/download/watch/{detail['input_path']}")
    assert r.status_code == 200 and r.content == LOG.encode()
    assert r.headers["content-type"] == "application/octet-stream"
    for out in detail["outputs"]:
        assert dashboard.get(f"/download/results/{out}").status_code == 200
    summary = dashboard.get(f"/download/results/{detail['summary_path']}").json()
    assert summary["uid"] == row["uid"]

    errors = dashboard.get("/api/errors").json()
    assert [f["uid"] for f in errors["files"]] == [bad["uid"]]
    assert errors["files"][0]["error"]["message"] == "empty file (0 bytes)"
    assert "empty file (0 bytes)" in dashboard.get("/errors").text
    assert dashboard.get(f"/api/files/{'0' * 32}").status_code == 404
    assert dashboard.get(f"/files/{row['uid']}").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/download/watch/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/download/results/..%2F..%2F..%2Fetc%2Fpasswd",
        "/download/results/%2Fetc%2Fpasswd",
        "/download/watch/.folderd/journal.sqlite3",
        "/download/watch/processed/..%2F.folderd%2Fjournal.sqlite3",
        "/download/elsewhere/passwd",
    ],
)
def test_downloads_stay_inside_watch_dir_and_results(dashboard: Dashboard, path: str) -> None:
    raw = httpx.get(dashboard.url + path)  # no client-side normalisation of the path
    assert raw.status_code == 404
    assert b"root:" not in raw.content


def test_upload_lands_atomically_and_is_processed(dashboard: Dashboard, queue: Queue) -> None:
    data = LOG.encode() * 20_000  # ~1.5 MB: several chunks through the parser
    r = dashboard.upload("big_20240103.log", data)
    assert r.status_code == 201, r.text
    assert r.json()["files"] == [{"filename": "big_20240103.log", "path": "big_20240103.log"}]
    row = _processed(dashboard, "big_20240103.log")
    assert row["size"] == len(data)
    assert (queue.dir("processed") / "big_20240103.log").read_bytes() == data
    upload_dir = queue.dir("unprocessed") / ".folderd-upload"
    assert list(upload_dir.iterdir()) == []


def _raw_upload(dash: Dashboard, filename: bytes, data: bytes) -> httpx.Response:
    """A multipart body built by hand: httpx (like browsers) would percent-encode control
    characters in the file name, and we want them to reach the server as they are."""
    boundary = b"folderd-test-boundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        b"--" + boundary + b"--\r\n"
    )
    ctype = "multipart/form-data; boundary=" + boundary.decode()
    return dash.post("/api/upload", content=body, headers={"content-type": ctype})


def test_upload_names_are_sanitised(dashboard: Dashboard, queue: Queue, tmp_path: Any) -> None:
    for name, expected in [
        ("../../../escape.log", "escape.log"),
        ("/etc/cron.d/abs.log", "abs.log"),
        ("..\\..\\win.log", "win.log"),
        (".hidden.log", "hidden.log"),
        ("ctl\x01\x1fname.log", "ctl__name.log"),
        ("tab\tname.log", "tab_name.log"),
    ]:
        r = _raw_upload(dashboard, name.encode(), b"[INFO] API: x\n")
        assert r.status_code == 201, (name, r.text)
        assert r.json()["files"][0]["path"] == expected
        _processed(dashboard, expected)
    for bad in ("..", "/", "..."):
        assert dashboard.upload(bad, b"x\n").status_code == 400
    for ignored in ("x.part", "~z.log", "y.tmp"):  # would sit in unprocessed/ forever
        r = dashboard.upload(ignored, b"x\n")
        assert r.status_code == 400 and "--ignore-patterns" in r.json()["error"], r.text
    long_name = "é" * 200 + ".log"  # 404 bytes of UTF-8: cut by bytes, extension kept
    r = _raw_upload(dashboard, long_name.encode(), b"[INFO] API: long\n")
    assert r.status_code == 201, r.text
    stored = r.json()["files"][0]["path"]
    assert stored.endswith(".log") and stored.startswith("éé") and len(stored.encode()) <= 240
    _processed(dashboard, stored)
    assert (queue.results / f"{stored}.json").exists(), "its results fit the filesystem"
    assert not (tmp_path / "escape.log").exists()
    assert not (queue.root / "escape.log").exists()
    # a second upload under a taken name gets a visible suffix, never overwrites
    dashboard.queue.drop("keep.log", b"[INFO] API: one\n")
    _processed(dashboard, "keep.log")
    r = dashboard.upload("keep.log", b"[INFO] API: two\n")
    assert r.json()["files"][0]["path"] == "keep.log"
    wait_until(lambda: dashboard.find("processed", "keep~1.log"), 30, "keep~1.log processed")


def test_oversize_upload_is_413_and_leaves_nothing(start_dashboard: Any, queue: Queue) -> None:
    dash = start_dashboard("--max-upload-mb", "1")
    r = dash.upload("huge.log", b"x" * (2 << 20))
    assert r.status_code == 413, r.text
    assert queue.files("unprocessed") == []  # the staging dir is hidden and empty
    assert list((queue.dir("unprocessed") / ".folderd-upload").iterdir()) == []
    assert dash.upload("fits.log", b"[INFO] API: x\n" * 1000).status_code == 201
    _processed(dash, "fits.log")


def test_writes_need_the_token_when_one_is_set(start_dashboard: Any, queue: Queue) -> None:
    dash = start_dashboard(env={"FOLDERD_TOKEN": "s3cret"})
    assert dash.get("/api/status").status_code == 200  # reads stay open
    assert dash.get("/health").status_code == 200
    r = dash.upload("a.log", b"[INFO] API: x\n")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert dash.post("/api/cancel", json={"path": "a.log"}).status_code == 401
    assert dash.post(f"/api/files/{'0' * 32}/requeue").status_code == 401
    assert dash.post(f"/files/{'0' * 32}/requeue").status_code == 401
    assert queue.files("unprocessed") == []

    ok = dash.upload("a.log", b"[INFO] API: x\n", headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 201
    _processed(dash, "a.log")

    # the browser's way: a login form that sets an HttpOnly, SameSite=Strict cookie
    login = dash.post("/login", data={"token": "s3cret", "next": "/upload"})
    assert login.status_code == 303 and login.headers["location"] == "/upload"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "s3cret" not in cookie
    assert dash.upload("b.log", b"[INFO] API: y\n").status_code == 201  # the cookie is sent
    assert (
        dash.post("/login", data={"token": "s3cret", "next": "//evil.example"}).headers["location"]
        == "/"
    )
    # last: a wrong token holds this client up for a while (test_security checks how long)
    assert (
        dash.upload("c.log", b"x\n", headers={"authorization": "Bearer wrong"}).status_code == 401
    )
    assert dash.post("/login", data={"token": "nope"}).status_code == 429


def test_cross_site_writes_are_refused(dashboard: Dashboard, queue: Queue) -> None:
    r = dashboard.upload("x.log", b"x\n", headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert queue.files("unprocessed") == []


def test_requeue_a_failed_file(dashboard: Dashboard, queue: Queue) -> None:
    queue.drop("fixme.log", b"")
    bad = _failed(dashboard, "fixme.log")
    assert dashboard.post("/api/files/nope/requeue").status_code == 404
    (queue.dir("failed") / "fixme.log").write_text("[INFO] API: fixed by hand\n")
    r = dashboard.post(f"/api/files/{bad['uid']}/requeue")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "fixme.log"
    row = _processed(dashboard, "fixme.log")
    assert row["uid"] == bad["uid"]
    timeline = [t["to_state"] for t in dashboard.file(bad["uid"])["timeline"]]
    assert timeline == ["failed", "unprocessed", "underprocess", "processed"]
    assert dashboard.post(f"/api/files/{bad['uid']}/requeue").status_code == 409


def test_a_requeued_file_that_comes_back_renamed_leaves_one_summary(
    dashboard: Dashboard, queue: Queue
) -> None:
    queue.drop("clash.log", b"")
    bad = _failed(dashboard, "clash.log")
    (queue.dir("failed") / "clash.log").write_text("[INFO] API: fixed by hand\n")
    (queue.dir("unprocessed") / "clash.log").mkdir()  # the name is taken in unprocessed/
    r = dashboard.post(f"/api/files/{bad['uid']}/requeue")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "clash~1.log"
    row = _processed(dashboard, "clash~1.log")
    assert row["uid"] == bad["uid"]
    owners = {p.name: json.loads(p.read_bytes()) for p in queue.results.glob("clash*.json")}
    assert set(owners) == {"clash~1.log.json"}, owners  # the failed one went with its file
    assert owners["clash~1.log.json"]["status"] == "processed"
    assert dashboard.file(bad["uid"])["summary"]["status"] == "processed"


def test_a_file_claimed_under_a_new_name_leaves_the_waiting_list(
    dashboard: Dashboard, queue: Queue
) -> None:
    for n in range(2):  # the second one is claimed as again~1.log: again.log is processed
        queue.drop("again.log", LOG)
        _processed(dashboard, "again~1.log" if n else "again.log")
    wait_until(lambda: "folderd_processing_duration_seconds_count 2.0" in
               dashboard.get("/metrics").text, 10, "both files' events applied")  # fmt: skip
    assert dashboard.get("/api/files").json()["waiting"] == []


def test_cancel_a_queued_file(start_dashboard: Any, queue: Queue, slow_config: Any) -> None:
    dash = start_dashboard("--config", str(slow_config), "--workers", "1")
    queue.drop("first.log", "line\n" * 400)  # keeps the only worker busy for ~4 s
    dash.daemon.wait_event("file_started", path="first.log")
    for i in range(4):  # the busy worker may prefetch one: the others wait in unprocessed/
        queue.drop(f"next{i}.log", "line\n")

    def waiting() -> str | None:  # first.log's own events may not be applied yet: skip it
        names = [w["path"] for w in dash.get("/api/files").json()["waiting"]]
        return next((n for n in names if n.startswith("next")), None)

    name = wait_until(waiting, 30, "a file waiting in unprocessed/")
    (queue.dir("unprocessed") / "sub").mkdir()
    (queue.dir("unprocessed") / "held.part").write_text("still arriving\n")
    before = sorted(queue.files("unprocessed"))
    for bad in ("", ".", "../x", "sub", "sub/", "held.part", ".folderd-upload", "a\0b"):
        r = dash.post("/api/cancel", json={"path": bad})
        assert r.status_code == 400, (bad, r.text)
    assert sorted(queue.files("unprocessed")) == before, "a refused cancel touches nothing"
    assert (queue.dir("unprocessed") / "sub").is_dir() and queue.files("failed") == []
    r = dash.post("/api/cancel", json={"path": name})
    assert r.status_code == 200, r.text
    assert r.json() == {"path": name, "state": "failed", "reason": "cancelled"}
    assert name in queue.files("failed")
    assert queue.summaries()[name]["error"]["message"] == "cancelled"
    assert dash.post("/api/cancel", json={"path": name}).status_code == 404
    _processed(dash, "first.log")


def test_names_are_escaped_in_every_page(dashboard: Dashboard, queue: Queue) -> None:
    name = "<script>alert(1)</script>.log"  # a folder `<script>alert(1)<` and `script>.log`
    queue.drop(name, LOG)
    row = _processed(dashboard, name)
    for path in ("/files", f"/files/{row['uid']}", "/?fragment=1", "/files?fragment=1"):
        html = dashboard.get(path).text
        assert "<script>alert(1)" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.log" in dashboard.get("/files").text


def test_live_events_stream(dashboard: Dashboard, queue: Queue) -> None:
    seen: list[dict[str, Any]] = []
    with httpx.stream("GET", dashboard.url + "/events", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        queue.drop("live_20240104.log", LOG)
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if any(e["kind"] == "file_processed" for e in seen):
                    break
    kinds = [e["kind"] for e in seen]
    assert kinds[0] == "status"
    assert "file_queued" in kinds and "file_started" in kinds
    done = next(e for e in seen if e["kind"] == "file_processed")
    assert done["path"] == "live_20240104.log"


def test_a_file_event_is_heard_only_once_the_journal_says_so(
    dashboard: Dashboard, queue: Queue
) -> None:
    # a page refreshes when it hears an event: what it then reads must already be true
    names = [f"order_{i:03d}.log" for i in range(25)]  # few enough for no "burst" message
    # started may already be overtaken by processed, never the other way round
    allowed = {"file_started": {"underprocess", "processed"}, "file_processed": {"processed"}}
    checked: dict[str, int] = dict.fromkeys(allowed, 0)
    with httpx.stream("GET", dashboard.url + "/events", timeout=30) as r:
        lines = r.iter_lines()
        for name in names:
            queue.drop(name, LOG)
        for line in lines:
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["kind"] in allowed and event.get("uid"):
                row = dashboard.get(f"/api/files/{event['uid']}").json()
                assert row["state"] in allowed[event["kind"]], (event, row["state"])
                checked[event["kind"]] += 1
            if checked["file_processed"] == len(names):
                break
    assert checked["file_started"] == len(names)


def test_port_in_use_is_a_clear_error(start_daemon: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        d = start_daemon("--port", str(port), wait=False, dashboard=True)
        wait_until(lambda: "dashboard cannot listen" in d.output(), 30, "the bind error")
        assert f"127.0.0.1:{port}: Address already in use" in d.output()
        assert d.wait_exit() == 2


def test_files_that_are_never_claimed_are_listed_with_why(
    start_dashboard: Any, queue: Queue
) -> None:
    dash = start_dashboard("--rescan-interval", "1")
    queue.drop("stuck.part", "still arriving?\n")

    def stuck() -> list[dict[str, str]]:
        return dash.get("/api/files").json()["stuck"]

    listed = wait_until(stuck, 30, "the ignored file listed")
    assert listed == [{"path": "stuck.part", "reason": listed[0]["reason"]}]
    assert "--ignore-patterns '*.part'" in listed[0]["reason"]
    assert "stuck.part" in dash.get("/files").text
    (queue.dir("unprocessed") / "stuck.part").rename(queue.dir("unprocessed") / "stuck.log")
    wait_until(lambda: not stuck(), 30, "gone from the list once renamed")
    wait_until(lambda: dash.find("processed", "stuck.log"), 30, "then processed")


def test_a_file_page_renders_while_its_new_summary_is_ahead_of_the_journal(
    dashboard: Dashboard, queue: Queue
) -> None:
    # A requeued file's worker commits its new summary (no error) a moment before the loop
    # journals the outcome (the row still has the old error): the page rendered a 500 then.
    queue.drop("racy.log", b"")
    row = wait_until(lambda: dashboard.find("failed", "racy.log"), 30, "racy.log failed")
    summary_path = queue.results / "racy.log.json"
    summary = json.loads(summary_path.read_text())
    del summary["error"]
    summary["status"] = "processed"
    summary_path.write_text(json.dumps(summary))
    r = dashboard.get(f"/files/{row['uid']}")
    assert r.status_code == 200, r.text
    assert "empty file (0 bytes)" in r.text, "the journal's error still shows"
