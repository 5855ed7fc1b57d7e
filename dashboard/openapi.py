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

from daemon.snapshot import VERSION
from dashboard.api_schemas import (
    INT,
    OBJECT,
    SCHEMAS,
    STRING,
    WHEN,
    Schema,
    array,
    fields,
    nullable,
    obj,
    ref,
)

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
            "content": {"application/json": {"schema": ref("Error")}},
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
        "responses": _responses(200, ref("Status")),
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
        "responses": _responses(200, ref("FilePage"), 503),
    },
    ("/api/files/{uid}", "get"): {
        "summary": "one file: its journal row, timeline and result summary",
        "parameters": _UID,
        "responses": _responses(200, ref("FileDetail"), 404, 503),
    },
    ("/api/files/{uid}/view", "get"): {
        "summary": "a page of one part of a file (input, summary, an output): lines or a sheet",
        "parameters": _UID
        + _query("part", "name", "line", "n", "q", "sheet", integers=("line", "n", "sheet")),
        "responses": _responses(200, ref("FileView"), 404, 503),
    },
    ("/api/history", "get"): {
        "summary": "files processed and failed per bucket of the last hour, day or week, by route",
        "parameters": _query("period", "route"),
        "responses": _responses(200, ref("History"), 503),
    },
    ("/api/files/{uid}/requeue", "post"): {
        "summary": "a failed file back to unprocessed/",
        "parameters": _UID,
        **_WRITE,
        "responses": _responses(
            200, fields(uid=STRING, path=STRING, state=STRING), 404, 409, write=True
        ),
    },
    ("/api/cancel", "post"): {
        "summary": "a file waiting in unprocessed/ to failed/, reason cancelled",
        "requestBody": _body("application/json", obj(("path",), path=STRING)),
        **_WRITE,
        "responses": _responses(
            200, fields(path=STRING, state=STRING, reason=STRING), 404, write=True
        ),
    },
    ("/api/errors", "get"): {
        "summary": "failed files, newest first, with their error",
        "parameters": _query("limit", "before", integers=("limit",)),
        "responses": _responses(200, ref("ErrorPage"), 503),
    },
    ("/api/errors/replay", "get"): {
        "summary": "what a bulk requeue with this filter would requeue",
        "parameters": _query("type", "route", "name", "since", "until"),
        "responses": _responses(200, ref("ReplayMatch"), 503),
    },
    ("/api/errors/replay", "post"): {
        "summary": "requeue every failed file the filter matches, if still `expect` of them",
        "requestBody": _body(
            "application/json",
            obj(
                ("expect",),
                type=STRING,
                route=STRING,
                name=STRING,
                since=nullable({"type": ["string", "number"]}),
                until=nullable({"type": ["string", "number"]}),
                expect=INT,
            ),
        ),
        **_WRITE,
        "responses": _responses(200, ref("Replayed"), 409, write=True),
    },
    ("/api/pipeline", "get"): {
        "summary": "the pipeline's graph, per-node stats, routes, sampled traces",
        "responses": _responses(200, ref("Pipeline")),
    },
    ("/api/configs", "get"): {
        "summary": "every pipeline config the daemon has run, with the files each produced",
        "responses": _responses(200, fields(configs=array(ref("Config"))), 503),
    },
    ("/api/batches", "get"): {
        "summary": "batch folders, newest first: open ones with their progress, done ones with "
        "their status and report",
        "parameters": _query("limit", integers=("limit",)),
        "responses": _responses(200, fields(batches=array(ref("Batch"))), 503),
    },
    ("/api/reprocess", "get"): {
        "summary": "what a reprocess with this filter would send back to run again",
        "parameters": _query("config", "state", "route", "name", "since", "until"),
        "responses": _responses(200, ref("ReprocessMatch"), 503),
    },
    ("/api/reprocess", "post"): {
        "summary": "run every finished file the filter matches again, if still `expect` of them",
        "requestBody": _body(
            "application/json",
            obj(
                ("expect",),
                config=STRING,
                state={"enum": ["processed", "failed", "all"]},
                route=STRING,
                name=STRING,
                since=WHEN,
                until=WHEN,
                expect=INT,
            ),
        ),
        **_WRITE,
        "responses": _responses(200, ref("Reprocessed"), 409, write=True),
    },
    ("/api/upload", "post"): {
        "summary": "files into unprocessed/, streamed to disk (one part per file)",
        "requestBody": _body("multipart/form-data", obj(("file",), file=_BINARY)),
        **_WRITE,
        "responses": _responses(
            201, fields(files=array(fields(filename=STRING, path=STRING))), 413, 415, write=True
        ),
    },
    ("/api/preview", "post"): {
        "summary": "one file through the active or an edited config, nothing moved or kept",
        "requestBody": _body(
            "multipart/form-data", obj(path=STRING, file=_BINARY, name=STRING, config=STRING)
        ),
        **_WRITE,
        "responses": _responses(200, ref("Preview"), 404, 413, 504, write=True),
    },
    ("/api/preview/check", "post"): {
        "summary": "an edited config's problems, each with its JSON path and line",
        "requestBody": _body("application/json", obj(("config",), config=STRING)),
        **_WRITE,
        "responses": _responses(200, ref("Preview"), 413, 504, write=True),
    },
    ("/api/sources", "get"): {
        "summary": "every source watched in place, with its counts and rates, and the jobs",
        "responses": _responses(200, ref("Sources")),
    },
    ("/api/sources", "post"): {
        "summary": "a job walking a source (by name) or a folder under --source-roots now; "
        "200 with the job already running for that source",
        "requestBody": _body(
            "application/json",
            obj(source=STRING, path=STRING, glob=STRING, name=STRING),
        ),
        **_WRITE,
        "responses": {
            **_responses(201, ref("SourceJob"), 404, 409, write=True),
            "200": {
                "description": "a job was running for that source: that one",
                "content": {"application/json": {"schema": ref("SourceJob")}},
            },
        },
    },
    ("/api/sources/jobs/{job}", "get"): {
        "summary": "one job and its progress",
        "parameters": _JOB_ID,
        "responses": _responses(200, ref("SourceJob"), 404),
    },
    ("/api/sources/jobs/{job}/cancel", "post"): {
        "summary": "stop a running job",
        "parameters": _JOB_ID,
        **_WRITE,
        "responses": _responses(200, ref("SourceJob"), 404, 409, write=True),
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
