"""Every page in a real Chromium, as the people who watch it see it: at a phone's width
(390 by 844, and 360) nothing is wider than the screen and the controls a finger aims at
are 44 px tall; in light and dark, axe-core (the copy PyPI's axe-playwright-python ships) finds no
serious or critical violation and the page follows the scheme; the keyboard reaches every
control and works the file page's viewers. Each page is screenshot at both widths (and a
few in dark): to tmp_path, or to TEST_SCREENSHOTS=docs/screenshots for the README."""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_until
from tests.dashboard.conftest import Dashboard, open_page
from tests.dashboard.test_browser import LOG, _expect

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
AXE = importlib.resources.files("axe_playwright_python") / "axe.min.js"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
DARK_SHOTS = {"overview", "file"}  # at the desktop width: the manual shows these two
# Every screenshot written, by name: the manual shows each (tests/docs/test_manual.py).
SHOTS = {
    "overview", "overview_phone", "files", "files_phone", "file", "file_phone", "file_failed",
    "file_failed_phone", "file_sheet", "file_sheet_phone", "view", "view_phone", "history",
    "history_phone", "pipeline", "pipeline_phone", "errors", "errors_phone", "upload",
    "upload_phone", "upload_done", "upload_done_phone", "preview_form", "preview_form_phone",
    "login", "login_phone", "missing", "missing_phone", "overview_dark", "file_dark",
    "reprocess", "reprocess_phone", "batches", "batches_phone",
}  # fmt: skip
TIMEOUT_MS = 30_000
SHEET = "id,kind,amount\n" + "".join(
    f"{i},{'member' if i % 2 else 'guest'},{i * 1.5}\n" for i in range(1, 80)
)


def sheet_config(path: Path) -> Path:
    """The default pipeline, plus a route for `*.sheet.csv` into an xlsx output."""
    config = json.loads((ROOT / "pipeline_config.json").read_text())
    config["routes"].insert(0, {"glob": "*.sheet.csv", "start": "sheetcsv",
                                "reader": {"type": "csv"}})  # fmt: skip
    columns = [{"name": "id", "type": "int"}, {"name": "kind"},
               {"name": "amount", "type": "float"}]  # fmt: skip
    config["nodes"].append({"name": "sheet_rows", "tag": "sheetcsv", "use": "csv_validate",
                            "to": "checked", "options": {"columns": columns, "emit": "record",
                                                         "invalid": "malformed"}})  # fmt: skip
    config["outputs"]["checked"] = {"format": "xlsx"}
    path.write_text(json.dumps(config))
    return path


@dataclass
class Site:
    dash: Dashboard
    pages: dict[str, tuple[str, str]]  # name -> (path, a text the page shows)


@pytest.fixture
def site(start_dashboard: Any, queue: Queue, tmp_path: Path) -> Site:
    dash = start_dashboard("--trace", "--config", str(sheet_config(tmp_path / "config.json")))
    for i in range(9):
        queue.drop(f"host{i % 3}_202401{i + 1:02d}.log", LOG * (i + 1))
    queue.drop("notes.log", b"")
    queue.drop("<b>bold</b> name.log", LOG)
    queue.drop("pay.sheet.csv", SHEET)
    wait_until(lambda: len(queue.files("processed")) == 11 and queue.files("failed"), 60,
               "the sample files done")  # fmt: skip
    wait_until(lambda: dash.get("/api/status").json()["states"]["processed"] == 11, 30,
               "the per-state totals refreshed")  # fmt: skip
    failed, processed, sheet = (dash.find("failed", "notes.log"),
                                dash.find("processed", "host0_20240101.log"),
                                dash.find("processed", "pay.sheet.csv"))  # fmt: skip
    assert failed and processed and sheet
    pages = {
        "overview": ("/", "Throughput, last hour"),
        "files": ("/files", "host0_20240101.log"),
        "file": (f"/files/{processed['uid']}", "Contents"),
        "file_failed": (f"/files/{failed['uid']}", "empty file (0 bytes)"),
        "file_sheet": (f"/files/{sheet['uid']}", "member"),
        "view": (f"/files/{processed['uid']}/view?part=input&q=error", "connection lost"),
        "history": ("/history?period=day", "By route"),
        "pipeline": ("/pipeline", "Sampled traces"),
        "errors": ("/errors", "notes.log"),
        "reprocess": ("/reprocess?state=processed&match=1", "11 file(s) match"),
        "batches": ("/batches", "no batch yet"),
        "upload": ("/upload", "Drop files here"),
        "preview_form": ("/preview", "Run one file"),  # preview.png: test_preview.py, filled in
        "login": ("/login", "dashboard token"),
        "missing": ("/files/no-such-file", "no such file"),
    }
    return Site(dash, pages)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("TEST_SCREENSHOTS", tmp_path / "shots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def new_page(chromium: Any, size: str, scheme: str) -> Any:
    width, height = SIZES[size]
    return open_page(chromium, width, height, color_scheme=scheme)


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def fits(page: Any) -> tuple[int, int]:
    return page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")


def too_wide(page: Any, name: str) -> list[str]:
    wide, inner = fits(page)
    return [f"{name}: {wide} px wide in a {inner} px window"] if wide > inner else []


def visit(page: Any, site: Site, path: str, text: str) -> None:
    """Open `path` and wait until it shows `text` and its live stream is connected."""
    expect = _expect()
    page.goto(site.dash.url + path)
    expect(page.locator("main")).to_contain_text(text)
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)


# The page's background and text as relative luminance (0 black, 1 white), and the boxes
# painted near-white: in the dark scheme, any is a colour the dark scheme left out.
SCHEME = """() => {
  const lum = c => { const [r, g, b, a] = c.match(/[\\d.]+/g).map(Number);
    return a === 0 ? null : (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255; };
  const body = getComputedStyle(document.body);
  const bright = [...document.querySelectorAll('body *')]
    .filter(e => e.checkVisibility() && (lum(getComputedStyle(e).backgroundColor) ?? 0) > 0.8)
    .map(e => e.outerHTML.slice(0, 80));
  return {background: lum(body.backgroundColor), text: lum(body.color), bright}; }"""


def scheme_problems(page: Any, scheme: str) -> list[str]:
    """What of the page does not follow `scheme` (the browser's prefers-color-scheme)."""
    seen = page.evaluate(SCHEME)
    if scheme == "light":
        ok = seen["background"] > 0.8 and seen["text"] < 0.3
        return [] if ok else [f"not light: {seen}"]
    problems = [] if seen["background"] < 0.2 and seen["text"] > 0.7 else [f"not dark: {seen}"]
    return problems + [f"a bright box in the dark: {html}" for html in seen["bright"]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_page_fits_and_passes_axe(
    site: Site, chromium: Any, shots: Path, size: str, scheme: str
) -> None:
    expect = _expect()
    problems: list[str] = []
    with new_page(chromium, size, scheme) as page:
        for name, (path, text) in site.pages.items():
            visit(page, site, path, text)
            problems += too_wide(page, name)
            problems += [f"{name}: {v}" for v in axe_violations(page)]
            problems += [f"{name}: {p}" for p in scheme_problems(page, scheme)]
            if scheme == "light" or (size == "desktop" and name in DARK_SHOTS):
                suffix = ("_phone" if size == "phone" else "") + (
                    "_dark" if scheme == "dark" else "")  # fmt: skip
                assert f"{name}{suffix}" in SHOTS
                page.screenshot(path=str(shots / f"{name}{suffix}.png"), full_page=True)
        if scheme == "light":  # the upload page once it did its work
            page.goto(site.dash.url + "/upload")
            page.set_input_files("#file-input", files=[
                {"name": "shot_20240109.log", "mimeType": "text/plain", "buffer": LOG.encode()},
            ])  # fmt: skip
            done = page.locator("#uploads td[data-state]").first
            expect(done).to_have_attribute("data-state", "processed", timeout=TIMEOUT_MS)
            problems += too_wide(page, "upload done")
            problems += [f"upload done: {v}" for v in axe_violations(page)]
            suffix = "_phone" if size == "phone" else ""
            page.screenshot(path=str(shots / f"upload_done{suffix}.png"), full_page=True)
    assert not problems, "\n".join(problems)


NARROWEST = (360, 740)  # the narrow end of the phones the issue names (360-414 px)
# The controls a finger aims at: the navigation, pagers, tabs, buttons and form fields
# (a link inside a sentence or a table cell is read, not aimed at).
TARGETS = """() => [...document.querySelectorAll(
    'header.top a, header.top button, .pager a, .tabs a, button, .button, select, textarea,'
    + 'input:not([type=hidden]):not([type=checkbox]):not([type=radio])')]
  .filter(e => e.checkVisibility({visibilityProperty: true}))
  .map(e => [e.outerHTML.slice(0, 90), e.getBoundingClientRect().height])
  .filter(([html, height]) => height < 44)"""


@pytest.mark.timeout(300)
def test_at_360_px_every_page_fits_and_its_controls_are_finger_sized(
    site: Site, chromium: Any
) -> None:
    problems: list[str] = []
    with open_page(chromium, *NARROWEST) as page:
        for name, (path, text) in site.pages.items():
            visit(page, site, path, text)
            problems += too_wide(page, name)
            problems += [f"{name}: {h:.0f} px tall: {html}" for html, h in page.evaluate(TARGETS)]
    assert not problems, "\n".join(problems)


CONTROLS = """() => [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]')]
  .filter(e => e.tabIndex >= 0 && !e.disabled && e.checkVisibility({visibilityProperty: true}))
  .map(e => e.outerHTML.slice(0, 90))"""


# The focused control's outline; not for the page itself, nor for a part of a native
# control that draws its own ring (a date field's picker button: `:focus` is not its host's).
FOCUS_STYLE = """() => { const e = document.activeElement;
  return e === document.body ? "body" : !e.matches(":focus") ? "native part"
    : getComputedStyle(e).outlineStyle; }"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_keyboard_reaches_every_control(site: Site, chromium: Any, size: str) -> None:
    with new_page(chromium, size, "light") as page:
        for name, (path, text) in site.pages.items():
            visit(page, site, path, text)
            controls = page.evaluate(CONTROLS)
            reached: list[str] = []
            autofocus = page.evaluate("() => document.activeElement !== document.body")
            page.keyboard.press("Tab")
            if not autofocus:  # the first Tab offers to skip the navigation
                assert page.evaluate("document.activeElement.className") == "skip", name
            for _ in range(10 * len(controls) + 20):  # a date field takes a Tab per part
                here = page.evaluate("() => document.activeElement.outerHTML.slice(0, 90)")
                if reached and here == reached[0]:
                    break
                reached.append(here)
                outline = page.evaluate(FOCUS_STYLE)
                assert outline != "none", f"{name}: no visible focus on {here}"
                page.keyboard.press("Tab")
            missed = [c for c in controls if c not in reached]
            assert not missed, f"{name}: Tab never reaches {missed}"


def test_the_file_page_viewers_work_by_keyboard_in_place(
    dashboard: Dashboard, page: Any, queue: Queue
) -> None:
    expect = _expect()
    body = "".join(f"2024-01-05 10:00:{i % 60:02d} [INFO] API: line {i}\n" for i in range(1, 121))
    body = body.replace("API: line 57\n", "API: line 57 <script>alert(1)</script> needle\n")
    queue.drop("big_20240105.log", body)
    row = wait_until(lambda: dashboard.find("processed", "big_20240105.log"), 30, "processed")
    wait_until(lambda: "folderd_processing_duration_seconds_count 1.0" in
               dashboard.get("/metrics").text, 10, "its events applied")  # fmt: skip
    page.goto(f"{dashboard.url}/files/{row['uid']}")  # so the page does not redraw at once
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.evaluate("window.__noReload = true")
    viewer = page.locator(".viewer", has=page.locator("h3", has_text="Input processed/"))
    lines = viewer.locator("table.lines th")
    expect(lines).to_have_text([str(i) for i in range(1, 11)])
    # jump to a line: type it and press Enter
    viewer.get_by_label("from line").fill("100")
    viewer.get_by_label("from line").press("Enter")
    expect(lines.first).to_have_text("100")
    expect(viewer.locator(".viewer-status")).to_be_focused()
    # the next page, by keyboard: Tab to its link and press Enter
    viewer.get_by_role("link", name="next 10 lines ›").focus()
    page.keyboard.press("Enter")
    expect(lines).to_have_text([str(i) for i in range(110, 120)])
    # a filter, from the line in the form: from 110, nothing; from 1, the one line holding
    # the text (in any case), escaped as text
    viewer.get_by_label("containing").fill("NEEDLE")
    viewer.get_by_label("containing").press("Enter")
    expect(viewer.locator(".viewer-status")).to_contain_text("no line containing “NEEDLE”")
    viewer.get_by_label("from line").fill("1")
    viewer.get_by_label("containing").press("Enter")
    expect(lines).to_have_text(["57"])
    expect(viewer.locator("table.lines td")).to_contain_text("<script>alert(1)</script> needle")
    assert page.evaluate("document.querySelectorAll('main script').length") == 0
    assert page.evaluate("window.__noReload") is True  # all in place, no page load
    expect(viewer.get_by_role("link", name="download")).to_have_attribute(
        "href", "/download/watch/processed/big_20240105.log"
    )


def test_a_redrawn_region_keeps_the_keyboard_focus(
    dashboard: Dashboard, page: Any, queue: Queue
) -> None:
    expect = _expect()
    page.goto(dashboard.url + "/")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    link = page.get_by_role("link", name="History: the last day and week, by route →")
    link.focus()
    page.evaluate("document.activeElement.dataset.before = 'yes'")  # gone once redrawn
    queue.drop("poke_20240105.log", LOG)  # its file_processed redraws the overview
    expect(page.locator("[data-state-count=processed]")).to_have_text("1", timeout=TIMEOUT_MS)
    assert page.evaluate("document.querySelector('[data-before]')") is None
    expect(link).to_be_focused()
    # a section opened on the History page stays open when the page redraws it
    page.goto(dashboard.url + "/history?period=hour")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.get_by_text("The numbers per minute").click()
    page.evaluate("document.querySelector('main details').dataset.before = 'yes'")
    queue.drop("poke2_20240105.log", LOG)
    expect(page.locator(".chart-total")).to_contain_text("2 processed", timeout=TIMEOUT_MS)
    assert page.evaluate("document.querySelector('[data-before]')") is None
    expect(page.locator("main details")).to_have_attribute("open", "")


def test_a_line_in_exponent_form_jumps_and_a_refusal_keeps_the_viewer(
    dashboard: Dashboard, page: Any, queue: Queue
) -> None:
    expect = _expect()
    body = "".join(f"2024-01-05 10:00:{i % 60:02d} [INFO] API: line {i}\n" for i in range(1, 301))
    queue.drop("exp_20240105.log", body)
    row = wait_until(lambda: dashboard.find("processed", "exp_20240105.log"), 30, "processed")
    wait_until(lambda: "folderd_processing_duration_seconds_count 1.0" in
               dashboard.get("/metrics").text, 10, "its events applied")  # fmt: skip
    page.goto(f"{dashboard.url}/files/{row['uid']}")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    viewer = page.locator(".viewer", has=page.locator("h3", has_text="Input processed/"))
    lines = viewer.locator("table.lines th")
    # a number field takes "2e2" as 200, and sends it as typed
    viewer.get_by_label("from line").fill("2e2")
    viewer.get_by_label("from line").press("Enter")
    expect(lines.first).to_have_text("200")
    # a request the server refuses (here a filter longer than a typed one can be) says why
    # in the status line; the form, the lines and the download link stay
    viewer.get_by_label("containing").evaluate("(e) => { e.value = 'x'.repeat(201); }")
    viewer.get_by_label("containing").press("Enter")
    status = viewer.locator(".viewer-status")
    expect(status).to_contain_text("at most 200 characters")
    expect(status).to_be_focused()
    expect(lines.first).to_have_text("200")
    expect(viewer.get_by_label("from line")).to_be_visible()
    expect(viewer.get_by_role("link", name="download")).to_be_visible()
    assert viewer.locator("h1").count() == 0
