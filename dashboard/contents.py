"""What the file page shows of a file's contents in place: its input, its summary and each
output, as lines (`dashboard.lines`: paged, jumped to, filtered, in bounded chunks) or,
for an xlsx output, a sheet's first rows (`dashboard.sheets`).

A part is named by what it is to the file (`part=input`, `part=summary`,
`part=output&name=<one of its outputs>`), never by a free path: the file's journal row and
summary say where each is, and `downloads.resolve` opens it, confined to watch_dir's state
folders and results/ as every download is.

Functions named `*_blocking` read the journal and files: call them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from dashboard import lines, pagedata, sheets
from dashboard.downloads import resolve

if TYPE_CHECKING:
    from dashboard.context import Dashboard

FIRST_LINES = 10  # of each part, on the file page
PAGE = 50  # lines of a page by default
MAX_PAGE = 500
MAX_QUERY = 200  # characters of a filter
MAX_PARTS = 32  # parts shown with their lines on the file page; the rest as links
MAX_LINE_NUMBER = 1 << 62


@dataclass(frozen=True)
class Part:
    kind: str  # "input", "summary" or "output"
    name: str  # as shown, relative to its area's root
    area: str  # "watch" or "results", as downloads name them

    @property
    def title(self) -> str:
        return {"input": "Input", "summary": "Summary", "output": "Output"}[self.kind]

    @property
    def params(self) -> dict[str, str]:
        return {"part": self.kind, "name": self.name} if self.kind == "output" else {
            "part": self.kind}  # fmt: skip

    @property
    def download(self) -> str:
        return f"/download/{self.area}/{quote(self.name)}"


def parts(row: Mapping[str, Any]) -> list[Part]:
    """The parts a file (its row from `pagedata.file_blocking`) has to show."""
    found = []
    if row["state"] != "missing":
        found.append(Part("input", row["input_path"], "watch"))
    if row.get("summary_path"):
        found.append(Part("summary", row["summary_path"], "results"))
    found += [Part("output", name, "results") for name in row["outputs"]]
    return found


def _number(params: Mapping[str, str], key: str, default: int, hi: int) -> int:
    """A whole number as a number field sends it: `200`, or `2e2` and `200.0` (a number
    field sends what was typed); clamped to 1..`hi`."""
    raw = (params.get(key) or "").strip()
    if not raw:
        return default
    if raw.isascii() and raw.isdigit():
        return max(1, min(int(raw), hi))
    try:
        value = Decimal(raw) if len(raw) <= 40 and raw.isascii() else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0 or value != value.to_integral_value():
        raise ValueError(f"{key} must be a whole number from 1 (got {raw[:40]!r})")
    return max(1, hi if value > hi else int(value))  # compared first: int(1e999999) is slow


@dataclass(frozen=True)
class Ask:
    """What a request asks of a part: from which line, how many, containing what."""

    line: int = 1
    count: int = PAGE
    query: str = ""
    sheet: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Ask:
        query = params.get("q") or ""
        if len(query) > MAX_QUERY or "\n" in query or "\r" in query:
            raise ValueError(f"q: a filter is one line of at most {MAX_QUERY} characters")
        return cls(
            line=_number(params, "line", 1, MAX_LINE_NUMBER),
            count=_number(params, "n", PAGE, MAX_PAGE),
            query=query,
            sheet=_number(params, "sheet", 1, 1 << 16) - 1,
        )


def pick(row: Mapping[str, Any], params: Mapping[str, str]) -> Part | None:
    """The part `params` names, or None when the file has no such part."""
    kind, name = params.get("part") or "", params.get("name") or ""
    for part in parts(row):
        if part.kind == kind and (kind != "output" or part.name == name):
            return part
    return None


def _head(uid: str, part: Part) -> dict[str, Any]:
    return {"uid": uid, "part": part.kind, "name": part.name, "title": part.title,
            "download": part.download, "params": part.params,
            "url": view_url(uid, part.params)}  # fmt: skip


def show(dash: Dashboard, uid: str, part: Part, ask: Ask) -> dict[str, Any]:
    """One part as the viewer shows it: `kind` says which of the shapes it is."""
    out = _head(uid, part)
    path = resolve(dash, part.area, part.name)
    if path is None:
        return {**out, "kind": "missing", "reason": "it is not there any more"}
    if part.kind == "output" and path.suffix.lower() == ".xlsx" and sheets.is_xlsx(path):
        rows = min(ask.count, sheets.ROWS)
        try:
            sheet = sheets.first_rows(path, ask.sheet, rows)
        except sheets.NotShown as exc:
            return {**out, "kind": "unavailable", "reason": str(exc)}
        tabs = [view_url(uid, part.params, sheet=i + 1) for i in range(len(sheet.names))]
        more = rows < sheets.ROWS and sheet.more_rows  # the file page shows a few: more here
        return {**out, "kind": "sheet", "sheets": sheet.names, "sheet": sheet.index,
                "sheet_urls": tabs, "rows": sheet.rows, "more_rows": sheet.more_rows,
                "more_columns": sheet.more_columns,
                "more_url": tabs[sheet.index] if more else None}  # fmt: skip
    try:
        page = dash.lines.page(path, ask.line, ask.count, ask.query)
    except OSError as exc:  # vanished, replaced by something not regular, unreadable
        return {**out, "kind": "missing", "reason": exc.strerror or str(exc)}
    except lines.Busy as exc:
        return {**out, "kind": "unavailable", "reason": str(exc)}
    if page.binary:
        return {**out, "kind": "binary", "size": page.size,
                "reason": "not text (it holds NUL bytes)"}  # fmt: skip
    return {
        **out,
        "kind": "text",
        "size": page.size,
        "start": page.start,
        "count": ask.count,
        "q": ask.query,
        "lines": [asdict(ln) for ln in page.lines],
        "next": page.next,
        "partial": page.partial,
        "position": page.position,
        "total": page.total,
        "links": _links(uid, part, ask, page.next),
    }


def _links(uid: str, part: Part, ask: Ask, nxt: int | None) -> dict[str, str | None]:
    """The pager's: the next page (same count and filter), the previous (without a filter:
    with one, the lines before are not known), the first."""
    params = part.params
    same = {"n": ask.count if ask.count != PAGE else None, "q": ask.query}
    back = ask.line > 1 and not ask.query
    return {
        "next": view_url(uid, params, line=nxt, **same) if nxt is not None else None,
        "previous": view_url(uid, params, line=max(1, ask.line - ask.count), **same)
        if back
        else None,
        "first": view_url(uid, params, **same) if ask.line > 1 else None,
    }


def view_url(uid: str, params: Mapping[str, str], **ask: Any) -> str:
    """The viewer page of the part `params` name, asking `ask` (line, n, q, sheet)."""
    query = {**params, **{k: v for k, v in ask.items() if v not in (None, "")}}
    return f"/files/{quote(uid)}/view?{urlencode(query)}"


def view_blocking(dash: Dashboard, uid: str, params: Mapping[str, str]) -> dict[str, Any] | None:
    """The part `params` name of file `uid`, or None when there is no such file or part;
    ValueError for a bad parameter."""
    ask = Ask.parse(params)
    row = pagedata.file_blocking(dash, uid)
    if row is None:
        return None
    part = pick(row, params)
    if part is None:
        return None
    return {"rel": row["rel"], **show(dash, uid, part, ask)}


def contents_blocking(dash: Dashboard, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The first lines of each of a file's parts (the first MAX_PARTS; the rest as links)."""
    uid = row["uid"]
    shown = []
    for i, part in enumerate(parts(row)):
        if i < MAX_PARTS:
            shown.append(show(dash, uid, part, Ask(count=FIRST_LINES)))
        else:
            shown.append({**_head(uid, part), "kind": "link"})
    return shown
