"""Downloads of inputs and results, confined to watch_dir's state folders and results/.

A path is refused (404, the same answer as for a missing file, so nothing is revealed)
when it is absolute, has an empty, `.` or `..` or hidden component (the journal under
`.folderd/`, temp results, staged uploads), leaves its root once symlinks are resolved, or
is not a regular file (a FIFO is never opened). Everything is sent as an attachment of type
application/octet-stream, so a result that happens to be HTML is never rendered.

Any name a file can have downloads, newlines included: the route's `anypath` convertor
matches across them (Starlette's `path` is `.*`, which stops at a newline), and the
attachment's name goes in RFC 6266's `filename*` (RFC 5987 percent-encoded UTF-8), with a
plain-ASCII `filename` beside it for clients that know only that.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from daemon.states import FOLDER_STATES
from formats.names import parsed

if TYPE_CHECKING:
    from dashboard.context import Dashboard

_NOT_PLAIN = re.compile(r'[^\x20-\x7e]|["\\%]')  # what a quoted `filename=` cannot hold


class AnyPathConvertor(Convertor[str]):
    """Like `path`, but across newlines."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())


def content_disposition(name: str) -> str:
    plain = _NOT_PLAIN.sub("_", name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def resolve(dash: Dashboard, area: str, rel: str) -> Path | None:
    """The file `rel` (as names are shown) names under `area` ("watch" or "results"), or
    None if refused."""
    parts = parsed(rel).split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") or p[0] == "." for p in parts):
        return None
    if area == "watch":
        if parts[0] not in FOLDER_STATES or len(parts) < 2:
            return None
        root = dash.api.folders.root
    elif area == "results":
        root = dash.api.folders.results
    else:
        return None
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, *parts))
    if not target.startswith(base + os.sep):
        return None
    try:
        st = os.stat(target)
    except OSError:
        return None
    return Path(target) if stat.S_ISREG(st.st_mode) else None


def download(request: Request) -> Response:
    dash: Dashboard = request.app.state.dashboard
    path = resolve(dash, request.path_params["area"], request.path_params["path"])
    if path is None:
        return JSONResponse({"error": "no such file"}, status_code=404)
    name = request.path_params["path"].rsplit("/", 1)[-1]
    headers = {"content-disposition": content_disposition(name)}
    return FileResponse(path, headers=headers, media_type="application/octet-stream")
