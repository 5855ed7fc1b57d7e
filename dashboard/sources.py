"""The Sources page and its JSON twin: every folder watched in place with its counts,
rates and last errors, and the jobs with their progress (`daemon.sources`). Reads come
from the daemon's snapshot (no journal query); starting and cancelling a job are actions,
so they need the token like every other change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from daemon.control import ActionError
from dashboard.api import ORJSONResponse, error
from dashboard.views import problem, render

if TYPE_CHECKING:
    from dashboard.context import Dashboard

FIELDS = ("source", "path", "glob", "name")


def _dash(request: Request) -> Dashboard:
    return request.app.state.dashboard


async def page(request: Request) -> Response:
    data = _dash(request).api.sources()
    return render(request, "sources", {**data, "notice": request.query_params.get("notice", "")})


async def listing(request: Request) -> Response:
    return ORJSONResponse(_dash(request).api.sources())


async def job(request: Request) -> Response:
    try:
        job_id = int(request.path_params["job"])
    except ValueError:
        return error("a job id is a number", 400)
    found = await run_in_threadpool(_dash(request).api.source_job, job_id)  # may ask the loop
    return ORJSONResponse(found) if found is not None else error(f"no job {job_id}", 404)


def _fields(body: Any) -> dict[str, str | None]:
    if not isinstance(body, dict) or any(
        k not in FIELDS or not isinstance(v, str | None) for k, v in body.items()
    ):
        raise ValueError
    return {k: body.get(k) or None for k in FIELDS}


async def start(request: Request) -> Response:
    """Start a job: JSON {"source": NAME} or {"path": FOLDER under --source-roots}, with
    "glob" and (a new folder's source) "name" if wanted. 201 with the job, or 200 with
    the job already running for that source."""
    try:
        fields = _fields(await request.json())
    except ValueError:
        return error('send JSON {"source": NAME} or {"path": FOLDER}, optional "glob", "name"',
                     400)  # fmt: skip
    try:
        found, new = await run_in_threadpool(lambda: _dash(request).api.start_source_job(**fields))
    except ActionError as exc:
        return error(str(exc), exc.status)
    return ORJSONResponse(found, status_code=201 if new else 200)


async def cancel(request: Request) -> Response:
    try:
        job_id = int(request.path_params["job"])
    except ValueError:
        return error("a job id is a number", 400)
    try:
        done = await run_in_threadpool(_dash(request).api.cancel_source_job, job_id)
    except ActionError as exc:
        return error(str(exc), exc.status)
    return ORJSONResponse(done)


async def sync_form(request: Request) -> Response:
    """The page's "sync now" and "cancel" buttons; back to the page with what happened."""
    form = await request.form()
    api = _dash(request).api
    try:
        if isinstance(raw := form.get("cancel"), str) and raw.isdigit():
            await run_in_threadpool(api.cancel_source_job, int(raw))
            notice = f"job {raw} cancelled"
        else:
            fields = _fields({k: v for k in FIELDS if isinstance(v := form.get(k), str)})
            found, new = await run_in_threadpool(lambda: api.start_source_job(**fields))
            notice = f"job {found['id']} {'started' if new else 'is running already'}"
    except ValueError:
        return problem(request, "which source or folder?", 400)
    except ActionError as exc:
        return problem(request, str(exc), exc.status)
    return RedirectResponse(f"/sources?notice={quote(notice)}", status_code=303)
