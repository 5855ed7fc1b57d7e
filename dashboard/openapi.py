"""The JSON API's contract: an OpenAPI 3.1 document of every `/api` route, served at
`/api/openapi.json`.

It is kept here, beside the routes (`dashboard.app`), and a test fails when an `/api`
route has no operation here or an operation no route. Response schemas name the fields a
client may rely on (objects stay open: a field added later breaks no client); every error
is `{"error": "<message>"}` with its status. The test suite fuzzes a live daemon against
this document (schemathesis): no 500, no answer outside it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from daemon.snapshot import VERSION
from dashboard.queries import STATES

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}


def _null(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _all(**properties: Schema) -> Schema:
    """An object with every one of `properties` required."""
    return _obj(tuple(properties), **properties)


_FILE = {
    "uid": STRING,
    "rel": STRING,
    "original": STRING,
    "state": {"enum": list(STATES)},
    "size": _null(INT),
    "attempts": _null(INT),
    "created": _null(NUMBER),
    "updated": NUMBER,
    "started": _null(NUMBER),
    "finished": _null(NUMBER),
    "duration": _null(NUMBER),
    "lines_in": _null(INT),
    "lines_out": _null(INT),
    "error": _null(_obj(("type", "message"), type=STRING, message=STRING)),
    "outputs": _array(STRING),
    "sha256": _null(STRING),
    "route": _null(STRING),
    "config_sha256": _null(STRING),
}
_PAGE = {
    "files": _array(_ref("File")),
    "limit": INT,
    "newer": _null(STRING),
    "older": _null(STRING),
    "total": INT,
}
_PROBLEM = _all(path=STRING, line=_null(INT), message=STRING)
_STALL = _all(uid=STRING, path=STRING, worker_pid=_null(INT), where=STRING, for_s=NUMBER,
              kill_after_s=_null(NUMBER))  # fmt: skip
_FILTER = _all(type=STRING, route=STRING, name=STRING, since=_null(NUMBER), until=_null(NUMBER))
_REPROCESS_FILTER = _all(
    config=STRING,
    state={"enum": ["processed", "failed", "all"]},
    route=STRING,
    name=STRING,
    since=_null(NUMBER),
    until=_null(NUMBER),
)
_WHEN = _null({"type": ["string", "number"]})

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(("error",), error=STRING),
    "File": _obj(tuple(_FILE), **_FILE),
    "FilePage": _obj(
        (*_PAGE, "state", "q", "states", "waiting", "stuck"),
        **_PAGE,
        state=_null(STRING),
        q=STRING,
        states={"type": "object", "additionalProperties": INT},
        since=STRING,
        until=STRING,
        waiting=_array(_all(path=STRING, queued_at=NUMBER, priority=INT)),
        stuck=_array(_all(path=STRING, reason=STRING)),
        markers=_array(
            _all(path=STRING, waiting_for=STRING, since=NUMBER, age_s=NUMBER, late=BOOL)
        ),
        config=_null(STRING),
    ),
    "ErrorPage": _obj(tuple(_PAGE), **_PAGE),
    "FileDetail": {
        "allOf": [
            _ref("File"),
            _obj(
                ("timeline", "summary", "input_path", "in_flight"),
                timeline=_array(
                    _all(
                        ts=NUMBER,
                        from_state=_null(STRING),
                        to_state=STRING,
                        attempt=_null(INT),
                        reason=_null(STRING),
                    )
                ),
                summary=_null(OBJECT),
                summary_path=STRING,
                input_path=STRING,
                in_flight=_null(OBJECT),
            ),
        ]
    },
    "Status": _obj(
        (
            "version",
            "pid",
            "ready",
            "uptime_s",
            "counts",
            "in_flight",
            "stalled",
            "workers",
            "journal",
            "states",
            "stats",
            "throughput",
            "system",
            "pipeline_outline",
            "token_required",
        ),
        version=STRING,
        pid=INT,
        ready=BOOL,
        uptime_s=NUMBER,
        counts={"type": "object", "additionalProperties": INT},
        in_flight=_array(_obj(("uid", "path"), uid=STRING, path=STRING)),
        stalled=_array(_STALL),
        workers=_obj(
            (
                "size",
                "alive",
                "busy",
                "deaths",
                "pids",
                "frozen",
                "stall_kills",
                "memory_limit_mb",
                "memory_exceeded",
            ),
            size=INT,
            alive=INT,
            busy=INT,
            deaths=INT,
            pids=_array(INT),
            frozen=_array(INT),
            stall_kills=INT,
            memory_limit_mb=_null(INT),
            memory_exceeded=INT,
        ),
        journal=_obj(("healthy",), healthy=BOOL),
        states={"type": "object", "additionalProperties": INT},
        stats=OBJECT,
        throughput=_array(_all(minute=INT, processed=INT, failed=INT)),
        system=OBJECT,
        pipeline_outline=STRING,
        token_required=BOOL,
        trace=BOOL,
        notify=_array(  # each webhook target's outbox (daemon.webhooks)
            _all(
                name=STRING,
                target=STRING,
                pending=INT,
                max_pending=INT,
                sent=INT,
                failed_attempts=INT,
                dropped=INT,
                failing=BOOL,
                last_error=_null(STRING),
                last_ok_age_s=_null(NUMBER),
                oldest_age_s=_null(NUMBER),
            )
        ),
        markers=_array(  # files waiting for a ready marker (daemon.markers)
            _all(path=STRING, waiting_for=STRING, since=NUMBER, age_s=NUMBER, late=BOOL)
        ),
    ),
    "Pipeline": _obj(
        ("nodes", "edges", "outline", "routes", "processors", "tags", "live"),
        nodes=_array(_obj(("id", "kind", "label"), id=STRING, kind=STRING, label=STRING)),
        edges=_array(_obj(("id",), id=STRING)),
        outline=STRING,
        routes=_array(STRING),
        processors=OBJECT,
        tags={"type": "object", "additionalProperties": INT},
        traces=_array(OBJECT),
        live=OBJECT,
    ),
    "ReplayMatch": _all(
        filter=_FILTER,
        described=STRING,
        count=INT,
        too_many=BOOL,
        max=INT,
        files=_array(_obj(("uid", "rel"), uid=STRING, rel=STRING)),
    ),
    "Replayed": _all(
        filter=_FILTER,
        requeued=_array(_all(uid=STRING, path=STRING)),
        skipped=_array(_all(uid=STRING, error=STRING)),
    ),
    "FileView": _obj(
        ("uid", "rel", "part", "name", "title", "download", "url", "params", "kind"),
        uid=STRING,
        rel=STRING,
        part={"enum": ["input", "summary", "output"]},
        name=STRING,
        title=STRING,
        download=STRING,
        url=STRING,
        params={"type": "object", "additionalProperties": STRING},
        kind={"enum": ["text", "sheet", "binary", "missing", "unavailable"]},
        lines=_array(_all(number=INT, text=STRING, more=INT, more_known=BOOL)),
        start=INT,
        count=INT,
        q=STRING,
        next=_null(INT),
        partial=BOOL,
        position=INT,
        size=INT,
        total=_null(INT),
        links=_all(next=_null(STRING), previous=_null(STRING), first=_null(STRING)),
        sheets=_array(STRING),
        sheet=INT,
        sheet_urls=_array(STRING),
        rows=_array(_array(STRING)),
        more_rows=BOOL,
        more_columns=BOOL,
        more_url=_null(STRING),
        reason=STRING,
    ),
    "History": _all(
        period={"enum": ["hour", "day", "week"]},
        periods=_array(STRING),
        span_s=INT,
        bucket_s=INT,
        route=_null(STRING),
        now=NUMBER,
        buckets=_array(_all(start=NUMBER, end=NUMBER, processed=INT, failed=INT)),
        totals=_all(processed=INT, failed=INT, failure_rate=_null(NUMBER)),
        routes=_array(
            _all(route=_null(STRING), processed=INT, failed=INT, failure_rate=_null(NUMBER))
        ),
        query_ms=NUMBER,
    ),
    "ReprocessMatch": _all(
        filter=_REPROCESS_FILTER,
        described=STRING,
        count=INT,
        too_many=BOOL,
        max=INT,
        files=_array(
            _obj(
                ("uid", "rel", "state"),
                uid=STRING,
                rel=STRING,
                state=STRING,
                route=_null(STRING),
                config_sha256=_null(STRING),
            )
        ),
    ),
    "Reprocessed": _all(
        filter=_REPROCESS_FILTER,
        reprocessed=_array(_all(uid=STRING, path=STRING)),
        skipped=_array(_all(uid=STRING, error=STRING)),
    ),
    "Config": _obj(
        ("sha256", "path", "first_loaded", "last_loaded", "processed", "failed", "current"),
        sha256=STRING,
        path=STRING,
        version={},
        description=_null(STRING),
        first_loaded=NUMBER,
        last_loaded=NUMBER,
        loads=INT,
        files={"type": "object", "additionalProperties": INT},
        processed=INT,
        failed=INT,
        produced=INT,
        current=BOOL,
    ),
    "Batch": _obj(
        ("id", "folder", "status", "files", "processed", "failed", "opened"),
        id=INT,
        folder=STRING,
        marker=STRING,
        status={"enum": ["open", "all_processed", "some_failed"]},
        files=INT,
        finished_files=INT,
        processed=INT,
        failed=INT,
        opened=NUMBER,
        finished=_null(NUMBER),
        report=_null(OBJECT),
    ),
    "Preview": _obj(
        ("config", "errors"),
        config={"enum": ["active", "edited"]},
        errors=_array(_PROBLEM),
        route=_null(_all(index=INT, describe=STRING)),
        metadata=OBJECT,
        outputs={"type": "object", "additionalProperties": _all(lines=_array(STRING), total=INT)},
        trace=_array(OBJECT),
        summary=OBJECT,
    ),
}

_JOB = {
    "id": INT, "source": STRING, "glob": _null(STRING),
    "state": {"enum": ["scanning", "running", "done", "cancelled"]},
    "created": NUMBER, "finished": _null(NUMBER), "error": _null(STRING),
    **{k: INT for k in ("total_files", "total_bytes", "done_files", "done_bytes", "failed_files",
                        "failed_bytes", "gone_files", "pending_files", "pending_bytes")},
}  # fmt: skip
SCHEMAS["SourceJob"] = _obj(tuple(_JOB), **_JOB)
SCHEMAS["Sources"] = _all(
    sources=_array(_obj(
        ("name", "path", "adhoc", "watcher", "error", "files", "bytes", "total_files", "rate",
         "last_errors", "last_scan", "scanning"),
        name=STRING, path=STRING, adhoc=BOOL, watcher=_null(STRING), error=_null(STRING),
        files={"type": "object", "additionalProperties": INT},
        bytes={"type": "object", "additionalProperties": INT},
        total_files=INT, rate=_all(files_per_s=NUMBER, bytes_per_s=NUMBER),
        last_errors=_array(_all(at=NUMBER, path=STRING, error=STRING)),
        last_scan=_null(OBJECT), scanning=BOOL, finalised=INT, after=STRING, results=STRING,
    )),
    jobs=_array(_ref("SourceJob")),
)  # fmt: skip

ERRORS = {
    400: "a parameter or body it cannot use (or a NUL in the URL, or a Host not allowed)",
    401: "the dashboard token is needed (FOLDERD_TOKEN is set): Authorization: Bearer …",
    403: "a cross-site request (its Origin is another site)",
    404: "no such file, or nothing of that name where it must be",
    409: "the file is not in the state the action needs",
    413: "larger than the limit",
    415: "not the content type the operation takes",
    429: "too many wrong tokens from this address: wait Retry-After seconds",
    503: "the journal cannot be read, the daemon did not answer in time, or the preview is busy",
    504: "the preview ran past --preview-timeout",
}
WRITE_ERRORS = (400, 401, 403, 429, 503)  # every POST: refused before it runs, or unable


def _responses(ok: int, schema: Schema, *errors: int, write: bool = False) -> Schema:
    statuses = sorted({400, *errors, *(WRITE_ERRORS if write else ())})
    out = {str(ok): {"description": "done", "content": {"application/json": {"schema": schema}}}}
    for status in statuses:
        out[str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return out


def _query(*names: str, integers: tuple[str, ...] = ()) -> list[Schema]:
    return [
        {"name": n, "in": "query", "required": False, "schema": INT if n in integers else STRING}
        for n in names
    ]


def _body(media: str, schema: Schema) -> Schema:
    return {"required": True, "content": {media: {"schema": schema}}}


_UID = [{"name": "uid", "in": "path", "required": True, "schema": STRING}]
_JOB_ID = [{"name": "job", "in": "path", "required": True, "schema": INT}]
_WRITE: Schema = {"security": [{"bearer": []}, {}]}  # the token only when one is configured
_BINARY = {"type": "string", "format": "binary"}

OPERATIONS: dict[tuple[str, str], Schema] = {
    ("/api/openapi.json", "get"): {
        "summary": "this document",
        "responses": _responses(200, OBJECT),
    },
    ("/api/status", "get"): {
        "summary": "the overview: counts, states, stats, throughput, workers, system",
        "responses": _responses(200, _ref("Status")),
    },
    ("/api/files", "get"): {
        "summary": "a page of files, newest first (`older`/`newer` are the cursors)",
        "parameters": _query(
            "state",
            "q",
            "limit",
            "before",
            "after",
            "since",
            "until",
            "config",
            integers=("limit",),
        ),
        "responses": _responses(200, _ref("FilePage"), 503),
    },
    ("/api/files/{uid}", "get"): {
        "summary": "one file: its journal row, timeline and result summary",
        "parameters": _UID,
        "responses": _responses(200, _ref("FileDetail"), 404, 503),
    },
    ("/api/files/{uid}/view", "get"): {
        "summary": "a page of one part of a file (input, summary, an output): lines or a sheet",
        "parameters": _UID
        + _query("part", "name", "line", "n", "q", "sheet", integers=("line", "n", "sheet")),
        "responses": _responses(200, _ref("FileView"), 404, 503),
    },
    ("/api/history", "get"): {
        "summary": "files processed and failed per bucket of the last hour, day or week, by route",
        "parameters": _query("period", "route"),
        "responses": _responses(200, _ref("History"), 503),
    },
    ("/api/files/{uid}/requeue", "post"): {
        "summary": "a failed file back to unprocessed/",
        "parameters": _UID,
        **_WRITE,
        "responses": _responses(
            200, _all(uid=STRING, path=STRING, state=STRING), 404, 409, write=True
        ),
    },
    ("/api/cancel", "post"): {
        "summary": "a file waiting in unprocessed/ to failed/, reason cancelled",
        "requestBody": _body("application/json", _obj(("path",), path=STRING)),
        **_WRITE,
        "responses": _responses(
            200, _all(path=STRING, state=STRING, reason=STRING), 404, write=True
        ),
    },
    ("/api/errors", "get"): {
        "summary": "failed files, newest first, with their error",
        "parameters": _query("limit", "before", integers=("limit",)),
        "responses": _responses(200, _ref("ErrorPage"), 503),
    },
    ("/api/errors/replay", "get"): {
        "summary": "what a bulk requeue with this filter would requeue",
        "parameters": _query("type", "route", "name", "since", "until"),
        "responses": _responses(200, _ref("ReplayMatch"), 503),
    },
    ("/api/errors/replay", "post"): {
        "summary": "requeue every failed file the filter matches, if still `expect` of them",
        "requestBody": _body(
            "application/json",
            _obj(
                ("expect",),
                type=STRING,
                route=STRING,
                name=STRING,
                since=_null({"type": ["string", "number"]}),
                until=_null({"type": ["string", "number"]}),
                expect=INT,
            ),
        ),
        **_WRITE,
        "responses": _responses(200, _ref("Replayed"), 409, write=True),
    },
    ("/api/pipeline", "get"): {
        "summary": "the pipeline's graph, per-node stats, routes, sampled traces",
        "responses": _responses(200, _ref("Pipeline")),
    },
    ("/api/configs", "get"): {
        "summary": "every pipeline config the daemon has run, with the files each produced",
        "responses": _responses(200, _all(configs=_array(_ref("Config"))), 503),
    },
    ("/api/batches", "get"): {
        "summary": "batch folders, newest first: open ones with their progress, done ones with "
        "their status and report",
        "parameters": _query("limit", integers=("limit",)),
        "responses": _responses(200, _all(batches=_array(_ref("Batch"))), 503),
    },
    ("/api/reprocess", "get"): {
        "summary": "what a reprocess with this filter would send back to run again",
        "parameters": _query("config", "state", "route", "name", "since", "until"),
        "responses": _responses(200, _ref("ReprocessMatch"), 503),
    },
    ("/api/reprocess", "post"): {
        "summary": "run every finished file the filter matches again, if still `expect` of them",
        "requestBody": _body(
            "application/json",
            _obj(
                ("expect",),
                config=STRING,
                state={"enum": ["processed", "failed", "all"]},
                route=STRING,
                name=STRING,
                since=_WHEN,
                until=_WHEN,
                expect=INT,
            ),
        ),
        **_WRITE,
        "responses": _responses(200, _ref("Reprocessed"), 409, write=True),
    },
    ("/api/upload", "post"): {
        "summary": "files into unprocessed/, streamed to disk (one part per file)",
        "requestBody": _body("multipart/form-data", _obj(("file",), file=_BINARY)),
        **_WRITE,
        "responses": _responses(
            201, _all(files=_array(_all(filename=STRING, path=STRING))), 413, 415, write=True
        ),
    },
    ("/api/preview", "post"): {
        "summary": "one file through the active or an edited config, nothing moved or kept",
        "requestBody": _body(
            "multipart/form-data", _obj(path=STRING, file=_BINARY, name=STRING, config=STRING)
        ),
        **_WRITE,
        "responses": _responses(200, _ref("Preview"), 404, 413, 504, write=True),
    },
    ("/api/preview/check", "post"): {
        "summary": "an edited config's problems, each with its JSON path and line",
        "requestBody": _body("application/json", _obj(("config",), config=STRING)),
        **_WRITE,
        "responses": _responses(200, _ref("Preview"), 413, 504, write=True),
    },
    ("/api/sources", "get"): {
        "summary": "every source watched in place, with its counts and rates, and the jobs",
        "responses": _responses(200, _ref("Sources")),
    },
    ("/api/sources", "post"): {
        "summary": "a job walking a source (by name) or a folder under --source-roots now; "
        "200 with the job already running for that source",
        "requestBody": _body(
            "application/json",
            _obj(source=STRING, path=STRING, glob=STRING, name=STRING),
        ),
        **_WRITE,
        "responses": {
            **_responses(201, _ref("SourceJob"), 404, 409, write=True),
            "200": {
                "description": "a job was running for that source: that one",
                "content": {"application/json": {"schema": _ref("SourceJob")}},
            },
        },
    },
    ("/api/sources/jobs/{job}", "get"): {
        "summary": "one job and its progress",
        "parameters": _JOB_ID,
        "responses": _responses(200, _ref("SourceJob"), 404),
    },
    ("/api/sources/jobs/{job}/cancel", "post"): {
        "summary": "stop a running job",
        "parameters": _JOB_ID,
        **_WRITE,
        "responses": _responses(200, _ref("SourceJob"), 404, 409, write=True),
    },
}


@cache
def document() -> Schema:
    """The OpenAPI document (built once: it depends on nothing that changes at run time)."""
    paths: dict[str, Schema] = {}
    for (path, method), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "folderd",
            "version": VERSION,
            "description": "The dashboard's JSON API. Reads are open; with FOLDERD_TOKEN "
            'set, every POST needs it as a Bearer token. Errors are {"error": message}.',
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
