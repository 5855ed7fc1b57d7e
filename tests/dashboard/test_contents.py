"""A file's input, summary and outputs in place, through real HTTP against a real daemon:
pages, jumps and filters of lines; an xlsx output's sheets; what is not shown and why;
names escaped; only a file's own parts, as downloads are confined."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard
from tests.dashboard.test_pages import SHEET, sheet_config

pytestmark = pytest.mark.integration

BODY = "".join(f"2024-01-05 10:00:{i % 60:02d} [INFO] API: line {i}\n" for i in range(1, 121))
BODY = BODY.replace("API: line 57\n", "API: line 57 <script>alert(1)</script>\n")
BODY = BODY.replace("[INFO] API: line 90\n", "[ERROR] DB: line 90 lost\n")


def _processed(dash: Dashboard, name: str, state: str = "processed") -> dict[str, Any]:
    return wait_until(lambda: dash.find(state, name), 30, f"{name} {state}")


def view(dash: Dashboard, uid: str, **params: Any) -> dict[str, Any]:
    r = dash.get(f"/api/files/{uid}/view", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def numbers(shown: dict[str, Any]) -> list[int]:
    return [ln["number"] for ln in shown["lines"]]


def test_lines_a_page_at_a_time_jumped_to_and_filtered(dashboard: Dashboard, queue: Queue) -> None:
    queue.drop("web_20240105.log", BODY)
    row = _processed(dashboard, "web_20240105.log")
    uid = row["uid"]

    first = view(dashboard, uid, part="input")
    assert first["kind"] == "text" and numbers(first) == list(range(1, 51))
    assert first["next"] == 51 and not first["partial"] and first["size"] == len(BODY)
    assert first["download"] == "/download/watch/processed/web_20240105.log"
    following = dashboard.get(first["links"]["next"].replace("/files/", "/api/files/", 1)).json()
    assert numbers(following) == list(range(51, 101))
    jump = view(dashboard, uid, part="input", line=115, n=10)
    assert numbers(jump) == list(range(115, 121)) and jump["next"] is None and jump["total"] == 120
    assert view(dashboard, uid, part="input", line=500)["lines"] == []
    found = view(dashboard, uid, part="input", q="db: LINE")
    assert [(ln["number"], ln["text"]) for ln in found["lines"]] == [
        (90, "2024-01-05 10:00:30 [ERROR] DB: line 90 lost")]  # fmt: skip

    errors = view(dashboard, uid, part="output", name="web_20240105.log.errors")
    assert len(errors["lines"]) == 1 and "line 90 lost" in errors["lines"][0]["text"]
    summary = view(dashboard, uid, part="summary", q='"status"')
    assert [ln["text"].strip() for ln in summary["lines"]] == ['"status": "processed",']

    # the file page shows each part's first lines, escaped; the part's own page more
    page = dashboard.get(f"/files/{uid}").text
    assert page.count('class="viewer"') == 2 + len(row["outputs"])
    assert "API: line 10\n" not in page and "API: line 10<" in page and "API: line 11<" not in page
    one = dashboard.get(f"/files/{uid}/view", params={"part": "input", "line": 57, "n": 1}).text
    assert "line 57 &lt;script&gt;alert(1)&lt;/script&gt;" in one and "<script>alert" not in one
    frag = dashboard.get(f"/files/{uid}/view", params={"part": "input", "fragment": 1}).text
    assert "<html" not in frag and "lines 1–50" in frag


def test_only_a_files_own_parts_and_bad_asks_are_refused(
    dashboard: Dashboard, queue: Queue
) -> None:
    queue.drop("a_20240105.log", BODY)
    queue.drop("b_20240105.log", BODY)
    a, b = _processed(dashboard, "a_20240105.log"), _processed(dashboard, "b_20240105.log")
    for params in (
        {"part": "output", "name": "b_20240105.log.errors"},  # another file's output
        {"part": "output", "name": "../watch_dir/processed/b_20240105.log"},
        {"part": "output"},
        {"part": "secrets"},
    ):
        assert dashboard.get(f"/api/files/{a['uid']}/view", params=params).status_code == 404
        assert dashboard.get(f"/files/{a['uid']}/view", params=params).status_code == 404
    assert dashboard.get("/api/files/nope/view", params={"part": "input"}).status_code == 404
    for bad in ({"line": "x"}, {"line": "-3"}, {"n": "1.5"}, {"line": "nan"}, {"q": "x" * 201},
                {"q": "a\nb"}):  # fmt: skip
        r = dashboard.get(f"/api/files/{b['uid']}/view", params={"part": "input", **bad})
        assert r.status_code == 400, (bad, r.text)
    huge = view(dashboard, b["uid"], part="input", line=2**70, n=10**9)  # clamped, not a 500
    assert huge["lines"] == [] and huge["count"] == 500
    # as a number field sends what was typed: 2e0 is line 2, 1e9999 lines are 500
    typed = view(dashboard, b["uid"], part="input", line="2e0", n="1e9999")
    assert typed["start"] == 2 and typed["count"] == 500


def test_an_xlsx_output_shows_each_sheets_first_rows(
    start_dashboard: Any, queue: Queue, tmp_path: Path
) -> None:
    dash = start_dashboard("--config", str(sheet_config(tmp_path / "config.json")))
    queue.drop("pay.sheet.csv", SHEET)
    row = _processed(dash, "pay.sheet.csv")
    assert "pay.sheet.csv.xlsx" in row["outputs"]
    sheet = view(dash, row["uid"], part="output", name="pay.sheet.csv.xlsx")
    assert sheet["kind"] == "sheet" and sheet["sheets"] == ["checked"]
    assert sheet["rows"][0] == ["id", "kind", "amount"] and sheet["rows"][1] == [
        "1",
        "member",
        "1.5",
    ]
    assert len(sheet["rows"]) == 50 and sheet["more_rows"]
    html = dash.get(f"/files/{row['uid']}").text  # the page shows a few rows, links more
    assert '<table class="sheet">' in html and "<td>member</td>" in html
    table = html.split('<table class="sheet">')[1].split("</table>")[0]
    assert table.count("<tr>") == 10 and "the first 50 rows ›" in html  # a header and 9 rows


def test_binary_missing_and_odd_named_parts(dashboard: Dashboard, queue: Queue) -> None:
    queue.drop("blob.log", b"\x00\x01binary" * 100)
    blob = _processed(dashboard, "blob.log", "failed")
    shown = view(dashboard, blob["uid"], part="input")
    assert shown["kind"] == "binary" and "lines" not in shown
    assert "not text" in dashboard.get(f"/files/{blob['uid']}").text

    raw = os.fsencode(queue.dir("unprocessed")) + b"/caf\xe9 & <b>.log"  # not UTF-8
    Path(os.fsdecode(raw + b".tmp")).write_bytes(BODY.encode())
    os.rename(raw + b".tmp", raw)
    odd = _processed(dashboard, "caf\\xe9 & <b>.log")
    shown = view(dashboard, odd["uid"], part="input", n=2)
    assert shown["name"] == "processed/caf\\xe9 & <b>.log" and numbers(shown) == [1, 2]
    assert dashboard.get(shown["download"]).content == BODY.encode()

    os.unlink(os.fsencode(queue.dir("processed")) + b"/caf\xe9 & <b>.log")  # an operator did
    gone = view(dashboard, odd["uid"], part="input")
    assert gone["kind"] == "missing"
