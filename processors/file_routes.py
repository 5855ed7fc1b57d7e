"""File routes: which start tag (and reader) a whole file gets, from its name and head.

Routes are tried in order; the first whose every condition holds wins. `glob` matches the
file's base name (or its whole relative path, when the pattern has a "/"); `regex` is
searched in the base name, and its named groups become the file's metadata; `head` is
matched at the start of the file's first bytes (after gzip and a UTF-8 byte order mark),
e.g. `^\\s*\\{` for JSON or a CSV header; `signature: "excel"` holds when those bytes
are a workbook's (an OLE container or a zip of a workbook: `processors.excel`). Where
each line goes from there is up to the nodes (`processors.line_routers`).
"""

from __future__ import annotations

import fnmatch
import posixpath

from config.pipeline import RouteConfig
from processors.base import ProcessorError
from processors.excel import is_workbook
from processors.readers import bom_length

HEAD_CHARS = 4096


def select(
    routes: tuple[RouteConfig, ...], rel_path: str, head: bytes
) -> tuple[RouteConfig, dict[str, str]]:
    """Return the matching route and the metadata its regex captured."""
    name = posixpath.basename(rel_path.replace("\\", "/"))
    head_text: dict[str, str] = {}
    for route in routes:
        if route.glob is not None:
            target = rel_path if "/" in route.glob else name
            if not fnmatch.fnmatchcase(target, route.glob):
                continue
        metadata: dict[str, str] = {}
        if route.regex is not None:
            match = route.regex.search(name)
            if match is None:
                continue
            metadata = {k: v for k, v in match.groupdict().items() if v is not None}
        if route.signature == "excel" and not is_workbook(head):
            continue
        if route.head is not None:
            encoding = route.reader.encoding
            if encoding not in head_text:
                text = head[bom_length(head, encoding) :][:HEAD_CHARS]
                head_text[encoding] = text.decode(encoding, "replace")
            if not route.head.match(head_text[encoding]):
                continue
        return route, metadata
    raise ProcessorError(
        f"no route matches {rel_path!r}",
        error_type="NoRoute",
    )


def describe(route: RouteConfig) -> str:
    """One line for the outline: `*.csv + head ^id, -> csv (csv reader)`."""
    parts = []
    if route.glob is not None:
        parts.append(f"glob {route.glob}")
    if route.regex is not None:
        parts.append(f"regex {route.regex.pattern}")
    if route.head is not None:
        parts.append(f"head {route.head.pattern}")
    if route.signature is not None:
        parts.append(f"signature {route.signature}")
    cond = " and ".join(parts) or "any file"
    reader = route.reader
    extra = f"{reader.type}, {reader.encoding}/{reader.errors}"
    return f"{cond} -> {route.start} ({extra})"
