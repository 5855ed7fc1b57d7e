"""Batch folders as the dashboard shows them (`daemon.batches`): the newest first, an open
one with how many of its files have finished, a done one with its status and report.
Reads the journal (call from a worker thread)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dashboard.api import ORJSONResponse, error, guarded, int_param
from dashboard.views import problem, render

if TYPE_CHECKING:
    from dashboard.context import Dashboard

LIMIT = 100


def batches_blocking(dash: Dashboard, limit: int = LIMIT) -> dict[str, Any]:
    conn = dash.reader.conn()
    rows = conn.execute(
        "SELECT id, folder, marker, opened, finished, status, files, processed, failed, report"
        " FROM batches ORDER BY id DESC LIMIT ?",
        (max(1, min(limit, 500)),),
    ).fetchall()
    out = []
    for row in rows:
        b = dict(row)
        b["report"] = orjson.loads(b["report"]) if b["report"] else None
        if b["status"] == "open":
            done = conn.execute(
                "SELECT state, COUNT(*) FROM batch_files WHERE batch_id = ? AND state IS NOT NULL"
                " GROUP BY state",
                (b["id"],),
            ).fetchall()
            finished = {state: n for state, n in done}
            b["processed"], b["failed"] = finished.get("processed", 0), finished.get("failed", 0)
            b["finished_files"] = sum(finished.values())
        else:
            b["finished_files"] = b["files"]
        out.append(b)
    return {"batches": out}


def api(request: Request) -> Response:
    """`GET /api/batches`: the batches, newest first."""
    return guarded(  # a bad `limit` is the 400 `guarded` answers, inside it
        request,
        lambda r: batches_blocking(r.app.state.dashboard, int_param(r, "limit", LIMIT)),
        ORJSONResponse,
        error,
    )


def page(request: Request) -> Response:
    return guarded(
        request,
        lambda r: batches_blocking(r.app.state.dashboard),
        lambda data: render(request, "batches", {"d": data}),
        lambda message, status: problem(request, message, status),
    )
