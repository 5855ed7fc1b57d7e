"""The Preview endpoints through real HTTP against a real daemon and dashboard: a file of
processed/ or an upload, the active or an edited config, located config errors, and the
limits — time, size, token — with nothing moved and nothing written."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from dashboard.sandbox import PreviewWorker
from dashboard.sandbox import Request as PreviewRequest
from tests.conftest import ROOT, Queue, wait_until
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.integration

LOG = (
    "2024-01-05 10:00:01 [INFO] API: request handled in 5 ms\n"
    "2024-01-05 10:00:02 [ERROR] DB: connection lost\n"
    "2024-01-05 10:00:03 [WARN] Cache: miss\n"
    "a line no parser understands\n"
)
NAME = "web01_20240105.log"
TIMEOUT_MS = 30_000


def _active() -> dict[str, Any]:
    return json.loads((ROOT / "pipeline_config.json").read_text())


# the default pipeline's aggregate node, which the tests misspell
_AGGREGATE = next(i for i, n in enumerate(_active()["nodes"]) if n["use"] == "aggregate")


def _tree(queue: Queue) -> dict[str, bytes]:
    """Every file under watch_dir and results/ (the journal aside), with its contents."""
    found = {}
    for root in (queue.root, queue.results):
        for p in sorted(root.rglob("*")):
            if p.is_file() and ".folderd" not in p.parts:
                found[str(p.relative_to(root.parent))] = p.read_bytes()
    return found


def _processed(dash: Dashboard, name: str = NAME, data: str = LOG) -> None:
    dash.queue.drop(name, data)
    wait_until(lambda: dash.find("processed", name), 30, f"{name} processed")


def test_a_processed_file_with_the_active_config_moves_and_writes_nothing(
    dashboard: Dashboard, queue: Queue
) -> None:
    _processed(dashboard)
    before = _tree(queue)
    r = dashboard.post("/api/preview", files={"path": (None, f"processed/{NAME}")})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["config"] == "active" and p["errors"] == []
    assert p["route"]["index"] == 0 and "regex" in p["route"]["describe"]
    assert p["metadata"] == {"host": "web01", "date": "20240105"}
    assert p["outputs"]["unparsed"] == {"lines": ["a line no parser understands"], "total": 1}
    assert json.loads(p["outputs"]["errors"]["lines"][0])["message"] == "connection lost"
    assert p["summary"]["status"] == "processed" and p["summary"]["lines_in"] == 4
    # parse_log holds each record until the next line shows whether it goes on (a stack
    # trace): so the first record moves on, through the templates, with the second line
    assert [t["path"] for t in p["trace"]][:3] == [
        ["log"],
        ["log", "parsed", "record", "leveled", "end"],
        ["log", "parsed", "record", "leveled", "errors"],
    ]
    assert _tree(queue) == before  # nothing moved, nothing written


def test_an_upload_with_an_edited_config_is_never_queued(
    dashboard: Dashboard, queue: Queue
) -> None:
    edited = _active()
    by_level = next(n for n in edited["nodes"] if n["use"] == "tag_level")
    by_level["options"]["levels"]["INFO"] = "errors"  # INFO now goes to errors
    before = _tree(queue)
    files = {
        "file": ("upload.bin", LOG.encode()),
        "name": (None, "db07_20240301.log"),
        "config": (None, json.dumps(edited)),
    }
    r = dashboard.post("/api/preview", files=files)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["config"] == "edited"
    assert p["metadata"] == {"host": "db07", "date": "20240301"}  # the name it ran as
    assert p["outputs"]["errors"]["total"] == 2
    assert "end" not in p["outputs"]
    assert _tree(queue) == before
    assert dashboard.get("/api/files").json()["files"] == []  # the journal never saw it


def test_config_errors_come_located_with_their_json_path_and_line(dashboard: Dashboard) -> None:
    text = json.dumps(_active(), indent=2).replace('"use": "aggregate"', '"use": "agregate"')
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "agregate" in t)
    r = dashboard.post("/api/preview/check", json={"config": text})
    assert r.status_code == 200, r.text
    problem = r.json()["errors"][0]  # (its topology follows: tags no node consumes)
    assert problem["path"] == f"$.nodes[{_AGGREGATE}].use" and problem["line"] == line
    assert "agregate" in problem["message"]
    broken = dashboard.post("/api/preview/check", json={"config": '{\n  "routes": [\n}'}).json()
    assert broken["errors"][0]["line"] == 3 and "not valid JSON" in broken["errors"][0]["message"]
    ok = dashboard.post("/api/preview/check", json={"config": json.dumps(_active())}).json()
    assert ok["errors"] == []
    # a preview with an invalid edited config answers its problems and runs nothing
    files = {"file": ("a.log", b"x\n"), "config": (None, text)}
    p = dashboard.post("/api/preview", files=files).json()
    assert p["errors"][0]["path"] == f"$.nodes[{_AGGREGATE}].use" and "outputs" not in p


def test_the_edited_config_downloads_as_a_file(dashboard: Dashboard) -> None:
    r = dashboard.post("/preview/config", data={"config": '{"version": 1}'})
    assert r.status_code == 200 and r.text == '{"version": 1}'
    assert r.headers["content-disposition"].startswith(
        'attachment; filename="pipeline_config.json"'
    )


def test_the_size_limit(start_dashboard: Callable[..., Dashboard], queue: Queue) -> None:
    dash = start_dashboard("--preview-max-mb", "1")
    big = "x" * 1023 + "\n"
    _processed(dash, "big_20240105.log", big * 1100)  # 1.07 MiB
    r = dash.post("/api/preview", files={"path": (None, "processed/big_20240105.log")})
    assert r.status_code == 413 and "preview limit of 1 MB" in r.json()["error"]
    r = dash.post("/api/preview", files={"file": ("big.log", (big * 1100).encode())})
    assert r.status_code == 413
    assert (
        dash.post("/api/preview", files={"file": ("ok.log", (big * 900).encode())}).json()[
            "summary"
        ]["lines_in"]
        == 900
    )


@pytest.mark.serial
def test_a_hanging_preview_is_stopped_and_never_stalls_the_daemon(
    start_dashboard: Callable[..., Dashboard], queue: Queue
) -> None:
    dash = start_dashboard("--preview-timeout", "2")
    hanging = {"routes": [{"start": "in"}], "outputs": {"end": {}},
               "nodes": [{"name": "h", "tag": "in", "use": "tests.dashboard.hang_plugin:hang",
                          "to": "end"}]}  # fmt: skip
    answer: dict[str, Any] = {}

    def run() -> None:
        files = {"file": ("a.log", b"x\n"), "config": (None, json.dumps(hanging))}
        started = time.monotonic()
        answer["r"] = dash.post("/api/preview", files=files)
        answer["s"] = time.monotonic() - started

    t = threading.Thread(target=run)
    t.start()
    # while it hangs, the dashboard answers and the daemon processes files
    dash.daemon.wait_event("preview_started", file="a.log")
    _processed(dash)
    assert dash.get("/health").status_code == 200
    assert dash.get("/files").status_code == 200  # a page served from the thread pool
    busy = dash.post("/api/preview/check", json={"config": "{}"})  # no queueing behind it
    assert busy.status_code == 503 and "another preview is running" in busy.json()["error"]
    t.join(30)
    assert answer["r"].status_code == 504, answer["r"].text
    assert "longer than 2 s" in answer["r"].json()["error"]
    assert 2 <= answer["s"] < 10
    dash.daemon.wait_event("preview_timed_out", timeout_s=2.0)
    # the next preview gets a fresh worker; a file of the queue may run under another name
    form = {"path": (None, f"processed/{NAME}"), "name": (None, "db02_20250101.log")}
    r = dash.post("/api/preview", files=form)
    assert r.status_code == 200 and r.json()["summary"]["status"] == "processed"
    assert r.json()["metadata"] == {"host": "db02", "date": "20250101"}


def _spawning(plugin: str) -> str:
    """A config whose one node starts a shell with a background `sleep` (spawn_plugin)."""
    return json.dumps({
        "routes": [{"start": "in"}], "outputs": {"end": {}},
        "nodes": [{"name": "s", "tag": "in", "use": f"tests.dashboard.spawn_plugin:{plugin}",
                   "to": "end"}],
    })  # fmt: skip


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Marks:
    """Where spawn_plugin's shell writes its pid and its sleep's, and `done` at its end."""

    def __init__(self, where: Path) -> None:
        self.dir = where
        where.mkdir()

    def pids(self) -> list[int]:
        return [int((self.dir / f"{name}.pid").read_text()) for name in ("sh", "sleep")]

    def written(self) -> bool:
        try:
            return len(self.pids()) == 2
        except (FileNotFoundError, ValueError):
            return False

    def running(self) -> list[int]:
        return [pid for pid in self.pids() if _running(pid)]


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Marks]:
    found = Marks(tmp_path / "marks")
    yield found
    if found.written():  # what a failing test left running: only the processes it started
        for pid in found.running():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.cmdline() == ["sleep", "40"] or str(found.dir) in " ".join(proc.cmdline()):
                    proc.send_signal(signal.SIGKILL)


def _scratches(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("folderd-preview-*"))


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def run() -> None:
        try:
            answer["r"] = call()
        except Exception as exc:  # the daemon killed under it
            answer["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, answer


def test_a_timed_out_preview_leaves_no_process_and_no_file(
    start_dashboard: Callable[..., Dashboard], tmp_path: Path, marks: Marks
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dash = start_dashboard("--preview-timeout", "2", env={"TMPDIR": str(tmp)})
    upload = f"{marks.dir}\n".encode() + b"x" * (8 << 20)  # as a 16 MB upload left 16 MB
    files = {"file": ("a.log", upload), "config": (None, _spawning("spawn_and_hang"))}
    t, answer = _in_thread(lambda: dash.post("/api/preview", files=files))
    wait_until(marks.written, 30, "the plugin's shell and its sleep started")
    assert len(marks.running()) == 2
    (scratch,) = _scratches(tmp)  # the preview's temp files, the upload among them
    assert [p.stat().st_size for p in scratch.rglob("upload") if p.is_file()] == [len(upload)]
    t.join(30)
    assert answer["r"].status_code == 504, answer["r"].text
    # the whole process group was killed, the temp files removed, before the answer
    assert marks.running() == []
    assert not (marks.dir / "done").exists()
    assert list(tmp.iterdir()) == []
    assert "its processes were stopped" in answer["r"].json()["error"]
    # the next preview runs at once, in the same server
    r = dash.post("/api/preview", files={"file": ("b.log", b"2024-01-05 10:00:02 [INFO] A: b\n")})
    assert r.status_code == 200 and r.json()["summary"]["status"] == "processed"
    assert list(tmp.iterdir()) == []


def test_a_preview_that_answers_takes_its_background_processes_with_it(
    start_dashboard: Callable[..., Dashboard], tmp_path: Path, marks: Marks
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dash = start_dashboard(env={"TMPDIR": str(tmp)})
    files = {"file": ("a.log", f"{marks.dir}\n".encode()),
             "config": (None, _spawning("spawn_and_return"))}  # fmt: skip
    r = dash.post("/api/preview", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"]["end"]["lines"] == [str(marks.dir)]
    assert marks.written() and marks.running() == []
    assert list(tmp.iterdir()) == []
    killed = dash.daemon.wait_event("preview_processes_killed", file="a.log")
    assert killed["processes"] >= 2  # the shell and its sleep


def _hanging_preview(dash: Dashboard, marks: Marks) -> tuple[threading.Thread, dict[str, Any]]:
    """A preview whose plugin started its shell and sleep and hangs, running in a thread."""
    files = {"file": ("a.log", f"{marks.dir}\n".encode()),
             "config": (None, _spawning("spawn_and_hang"))}  # fmt: skip
    running = _in_thread(lambda: dash.post("/api/preview", files=files))
    wait_until(marks.written, 30, "the plugin's shell and its sleep started")
    return running


def test_a_killed_daemons_preview_is_ended_by_its_server(
    start_dashboard: Callable[..., Dashboard], tmp_path: Path, marks: Marks
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dash = start_dashboard("--preview-timeout", "120", env={"TMPDIR": str(tmp)})
    t, answer = _hanging_preview(dash, marks)
    dash.daemon.kill()  # SIGKILL of the daemon alone: its preview server sees its pipe close
    t.join(30)
    assert "error" in answer
    wait_until(lambda: marks.running() == [], 10, "the preview's processes ended")
    wait_until(lambda: _scratches(tmp) == [], 10, "the preview's scratch removed")


def test_what_a_killed_process_group_left_is_swept_at_start(
    start_dashboard: Callable[..., Dashboard], tmp_path: Path, marks: Marks
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    dash = start_dashboard("--preview-timeout", "120", env=env)
    t, answer = _hanging_preview(dash, marks)
    # SIGKILL to the daemon's process group (a supervisor without cgroups, `kill -9 -PGID`):
    # the preview server dies at once, the preview with it, and nothing cleans up
    os.killpg(dash.daemon.pid, signal.SIGKILL)
    dash.daemon.proc.wait(30)
    t.join(30)
    assert "error" in answer
    (left,) = _scratches(tmp)
    assert len(marks.running()) == 2, "the shell and its sleep outlive them"
    me = psutil.Process()
    alive = tmp / f"folderd-preview-{me.pid}-{round(me.create_time() * 100)}-live"
    alive.mkdir()  # a preview server that is still running: not a leftover
    other = tmp / "folderd-preview-abc123"  # not a name the sweep knows: never touched
    other.mkdir()

    dash = start_dashboard(env=env)
    swept = dash.daemon.wait_event("preview_leftovers_swept")
    assert (swept["dirs"], swept["processes"]) == (1, 2) and swept["bytes"] > 0
    wait_until(lambda: marks.running() == [], 10, "the leftover processes killed")
    assert not (marks.dir / "done").exists()
    assert _scratches(tmp) == sorted([alive, other]) and not left.exists()


def test_no_temp_dir_is_the_machines_fault_and_the_next_preview_runs(
    start_dashboard: Callable[..., Dashboard], tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dash = start_dashboard(env={"TMPDIR": str(tmp)})
    files = {"file": ("b.log", b"2024-01-05 10:00:02 [INFO] A: b\n")}
    assert dash.post("/api/preview", files=files).status_code == 200
    tmp.rmdir()  # the temp dir the preview server uses is gone
    r = dash.post("/api/preview", files=files)
    assert r.status_code == 503 and "no temp directory for the preview" in r.json()["error"]
    tmp.mkdir()
    assert dash.post("/api/preview", files=files).status_code == 200


def test_the_preview_server_outlives_the_thread_that_started_it() -> None:
    """Each request runs on one of the dashboard's pool threads, which end when idle a
    while: the server must not die with the one that happened to start it."""
    worker = PreviewWorker(timeout=30)
    job = PreviewRequest(_spawning("server_pid"), None, "a.log", data=b"x\n")
    servers: list[str] = []
    try:
        for _ in range(2):
            t = threading.Thread(target=lambda: servers.extend(
                worker.run(job)["outputs"]["end"]["lines"]))  # fmt: skip
            t.start()
            t.join(60)
        assert len(servers) == 2 and servers[0] == servers[1], servers
    finally:
        worker.close()
    assert not _running(int(servers[0]))  # closed, it ended


def test_a_preview_that_hoards_memory_is_capped_and_the_next_one_runs(
    start_dashboard: Callable[..., Dashboard],
) -> None:
    dash = start_dashboard()
    hog = {"routes": [{"start": "in"}], "outputs": {"end": {}},
           "nodes": [{"name": "h", "tag": "in", "use": "tests.dashboard.hog_plugin:hog",
                      "to": "end"}]}  # fmt: skip
    files = {"file": ("a.log", b"x\n"), "config": (None, json.dumps(hog))}
    r = dash.post("/api/preview", files=files)
    assert r.status_code in (200, 500), r.text  # the file fails, or the preview does
    text = r.text
    assert "MemoryError" in text, text
    ok = dash.post("/api/preview", files={"file": ("b.log", b"2024-01-05 10:00:02 [INFO] A: b\n")})
    assert ok.status_code == 200 and ok.json()["summary"]["status"] == "processed"


def test_the_token_is_needed_when_set(start_dashboard: Callable[..., Dashboard]) -> None:
    dash = start_dashboard(env={"FOLDERD_TOKEN": "s3cret"})
    files = {"file": ("a.log", b"2024-01-05 10:00:02 [ERROR] DB: x\n")}
    for path, kw in (
        ("/api/preview", {"files": files}),
        ("/api/preview/check", {"json": {"config": "{}"}}),
    ):
        assert dash.post(path, **kw).status_code == 401
    auth = {"authorization": "Bearer s3cret"}
    # the page shows the config (it may hold credentials) only to those with the token
    assert '"parse_log"' not in dash.get("/preview").text
    assert "Log in</a> to see the active config" in dash.get("/preview").text
    assert "&#34;parse_log&#34;" in dash.get("/preview", headers=auth).text
    assert (
        dash.post("/api/preview", files=files, headers=auth).json()["outputs"]["errors"]["total"]
        == 1
    )
    assert dash.post("/api/preview/check", json={"config": "{}"}, headers=auth).status_code == 200


def test_only_files_of_processed_and_failed_inside_watch_dir(dashboard: Dashboard) -> None:
    for path, status in (
        ("processed/../../etc/passwd", 404),
        ("processed/nope.log", 404),
        ("unprocessed/x.log", 400),
        (".folderd/journal.sqlite3", 400),
    ):
        r = dashboard.post("/api/preview", files={"path": (None, path)})
        assert r.status_code == status, (path, r.text)
    assert dashboard.post("/api/preview/check", content=b"not json").status_code == 400


def test_the_page_lists_processed_and_failed_files(dashboard: Dashboard, queue: Queue) -> None:
    _processed(dashboard)
    queue.drop("empty.log", b"")
    wait_until(lambda: dashboard.find("failed", "empty.log"), 30, "empty.log failed")
    html = dashboard.get("/preview").text
    assert f'<option value="processed/{NAME}">' in html
    assert '<option value="failed/empty.log">' in html
    assert "systemctl reload folderd" in html


@pytest.mark.browser
def test_the_page_in_chromium(dashboard: Dashboard, page: Any, tmp_path: Path) -> None:
    """Errors located as one types, a preview drawn; TEST_SCREENSHOTS=docs/screenshots
    refreshes the manual's screenshot."""
    from playwright.sync_api import expect

    _processed(dashboard)
    page.goto(dashboard.url + "/preview")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    config = page.locator("#config")
    text = config.input_value()
    config.fill(text.replace('"use": "aggregate"', '"use": "agregate"'))
    errors = page.locator("#config-errors li")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if '"aggregate"' in t)
    where = f"line {line} · $.nodes[{_AGGREGATE}].use"
    expect(errors.first).to_contain_text(where, timeout=TIMEOUT_MS)
    expect(page.locator("#config-state")).to_contain_text("problem(s)")
    page.click("#reset")
    expect(page.locator("#config-state")).to_have_text("active config")
    expect(errors).to_have_count(0)
    # an edit that is valid: INFO lines go to errors too
    config.fill(text.replace('"ERROR": "errors"', '"ERROR": "errors", "INFO": "errors"'))
    expect(page.locator("#config-state")).to_have_text("edited: valid", timeout=TIMEOUT_MS)
    page.select_option("#source", f"processed/{NAME}")
    page.click("#run")
    errors_out = page.locator('pre[data-output="errors"]')
    expect(errors_out).to_contain_text("connection lost", timeout=TIMEOUT_MS)
    expect(errors_out).to_contain_text("request handled in 5 ms")
    expect(page.locator("#route")).to_contain_text("metadata host")
    expect(page.locator("#trace tr")).to_have_count(4)
    expect(page.locator("#summary")).to_contain_text('"status": "processed"')
    with page.expect_download() as download:
        page.click("#download")
    saved = download.value
    assert saved.suggested_filename == "pipeline_config.json"
    assert '"INFO": "errors"' in Path(saved.path()).read_text()
    out = Path(os.environ.get("TEST_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "preview.png"), full_page=True)
