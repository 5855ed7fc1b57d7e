"""The Starlette application: every route in one list, the lifespan that connects the hub
to the daemon's events, and the security middleware."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard import (
    api,
    batches,
    downloads,
    metrics,
    preview,
    reprocess_http,
    sources,
    sse,
    views,
)
from dashboard.auth import Access, SecurityMiddleware
from dashboard.context import Dashboard
from dashboard.digest import Digest
from dashboard.hosts import AllowedHosts
from dashboard.templating import templates

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.control import DaemonAPI

STATIC = Path(__file__).parent / "static"

routes = [
    # pages
    Route("/", views.overview, name="overview"),
    Route("/files", views.files, name="files"),
    Route("/files/{uid}", views.file_detail, name="file"),
    Route("/files/{uid}/contents", views.file_contents, name="file_contents"),
    Route("/files/{uid}/view", views.file_view, name="file_view"),
    Route("/files/{uid}/requeue", views.requeue_form, methods=["POST"], name="requeue_form"),
    Route("/cancel", views.cancel_form, methods=["POST"], name="cancel_form"),
    Route("/pipeline", views.pipeline, name="pipeline"),
    Route("/errors", views.errors, name="errors"),
    Route("/history", views.history_page, name="history"),
    Route("/errors/requeue", views.replay_form, methods=["POST"], name="replay_form"),
    Route("/batches", batches.page, name="batches"),
    Route("/reprocess", reprocess_http.page, name="reprocess"),
    Route("/reprocess", reprocess_http.form, methods=["POST"], name="reprocess_form"),
    Route("/upload", views.upload_page, name="upload_page"),
    Route("/upload", api.upload, methods=["POST"], name="upload"),
    Route("/preview", preview.page, name="preview"),
    Route("/preview/config", preview.download, methods=["POST"], name="preview_config"),
    Route("/sources", sources.page, name="sources"),
    Route("/sources/sync", sources.sync_form, methods=["POST"], name="sources_form"),
    Route("/login", views.login_page, name="login_page"),
    Route("/login", views.login, methods=["POST"], name="login"),
    Route("/logout", views.logout, methods=["POST"], name="logout"),
    Route("/events", sse.events, name="events"),
    Route("/download/{area}/{path:anypath}", downloads.download, name="download"),
    # probes
    Route("/health", api.health_endpoint, methods=["GET", "HEAD"], name="health"),
    Route("/metrics", api.metrics_endpoint, name="metrics"),
    # JSON API: each route described in dashboard/openapi.py
    Route("/api/openapi.json", api.openapi_document, name="api_openapi"),
    Route("/api/status", api.status, name="api_status"),
    Route("/api/files", api.files, name="api_files"),
    Route("/api/files/{uid}", api.file_detail, name="api_file"),
    Route("/api/files/{uid}/view", api.file_view, name="api_file_view"),
    Route("/api/files/{uid}/requeue", api.requeue, methods=["POST"], name="api_requeue"),
    Route("/api/cancel", api.cancel, methods=["POST"], name="api_cancel"),
    Route("/api/errors", api.errors, name="api_errors"),
    Route("/api/errors/replay", api.replay_match, name="api_replay_match"),
    Route("/api/errors/replay", api.replay_requeue, methods=["POST"], name="api_replay"),
    Route("/api/pipeline", api.pipeline, name="api_pipeline"),
    Route("/api/history", api.history_counts, name="api_history"),
    Route("/api/configs", reprocess_http.configs, name="api_configs"),
    Route("/api/batches", batches.api, name="api_batches"),
    Route("/api/reprocess", reprocess_http.match, name="api_reprocess_match"),
    Route("/api/reprocess", reprocess_http.run, methods=["POST"], name="api_reprocess"),
    Route("/api/upload", api.upload, methods=["POST"], name="api_upload"),
    Route("/api/sources", sources.listing, name="api_sources"),
    Route("/api/sources", sources.start, methods=["POST"], name="api_sources_start"),
    Route("/api/sources/jobs/{job}", sources.job, name="api_source_job"),
    Route("/api/sources/jobs/{job}/cancel", sources.cancel, methods=["POST"], name="job_cancel"),
    Route("/api/preview", preview.preview, methods=["POST"], name="api_preview"),
    Route("/api/preview/check", preview.check, methods=["POST"], name="api_preview_check"),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


def create_app(daemon_api: DaemonAPI, settings: Settings, digest: Digest) -> Starlette:
    dash = Dashboard.build(daemon_api, settings)
    metrics.install(dash)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        dash.preview.sweep()  # what previews left when a daemon before this one was killed
        await dash.hub.start()
        unsubscribe = daemon_api.events.subscribe(dash.hub.on_event)
        task = asyncio.create_task(dash.hub.run(), name="dashboard-hub")
        try:
            yield
        finally:
            unsubscribe()
            dash.hub.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            dash.reader.close()
            dash.preview.close()

    access = Access(settings.token)
    hosts = AllowedHosts(settings.allowed_hosts, settings.host)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(sse.SeenEvents, hub=dash.hub),
            Middleware(SecurityMiddleware, access=access, hosts=hosts, digest=digest),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: api.http_error},
    )
    app.state.dashboard = dash
    app.state.access = access
    app.state.templates = templates()
    return app
