"""Downloads of inputs and results, confined to watch_dir's state folders and results/.

A path is refused (404, the same answer as for a missing file, so nothing is revealed)
when it is absolute, has an empty, `.` or `..` or hidden component (the journal under
`.folderd/`, temp results, staged uploads), leaves its root once symlinks are resolved, or
is not a regular file (a FIFO is never opened). Everything is sent as an attachment of type
application/octet-stream, so a result that happens to be HTML is never rendered.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from daemon.states import FOLDER_STATES

if TYPE_CHECKING:
    from dashboard.context import Dashboard


def resolve(dash: Dashboard, area: str, rel: str) -> Path | None:
    """The file `rel` names under `area` ("watch" or "results"), or None if refused."""
    parts = rel.split("/")
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
    return FileResponse(path, filename=name, media_type="application/octet-stream")
