"""The schemas of the JSON API's answers (`dashboard.openapi` puts them in its document).

Each names the fields a client may rely on; objects stay open (a field added later breaks
no client). `SCHEMAS` are the document's components, referred to by name (`ref`).
"""

from __future__ import annotations

from typing import Any

from dashboard.queries import STATES

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
OBJECT: Schema = {"type": "object"}


def nullable(schema: Schema) -> Schema:
    """`schema`, or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> Schema:
    """The component schema `name` (of `SCHEMAS`)."""
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema) -> Schema:
    """A list of `items`."""
    return {"type": "array", "items": items}


def obj(required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    """An object with `properties`, of which `required` must be there."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def fields(**properties: Schema) -> Schema:
    """An object with every one of `properties` required."""
    return obj(tuple(properties), **properties)


_FILE = {
    "uid": STRING,
    "rel": STRING,
    "original": STRING,
    "state": {"enum": list(STATES)},
    "size": nullable(INT),
    "attempts": nullable(INT),
    "created": nullable(NUMBER),
    "updated": NUMBER,
    "started": nullable(NUMBER),
    "finished": nullable(NUMBER),
    "duration": nullable(NUMBER),
    "lines_in": nullable(INT),
    "lines_out": nullable(INT),
    "error": nullable(obj(("type", "message"), type=STRING, message=STRING)),
    "outputs": array(STRING),
    "sha256": nullable(STRING),
    "route": nullable(STRING),
    "config_sha256": nullable(STRING),
}
_PAGE = {
    "files": array(ref("File")),
    "limit": INT,
    "newer": nullable(STRING),
    "older": nullable(STRING),
    "total": INT,
}
_PROBLEM = fields(path=STRING, line=nullable(INT), message=STRING)
_STALL = fields(uid=STRING, path=STRING, worker_pid=nullable(INT), where=STRING, for_s=NUMBER,
                kill_after_s=nullable(NUMBER))  # fmt: skip
_FILTER = fields(
    type=STRING, route=STRING, name=STRING, since=nullable(NUMBER), until=nullable(NUMBER)
)
_REPROCESS_FILTER = fields(
    config=STRING,
    state={"enum": ["processed", "failed", "all"]},
    route=STRING,
    name=STRING,
    since=nullable(NUMBER),
    until=nullable(NUMBER),
)
WHEN = nullable({"type": ["string", "number"]})

SCHEMAS: dict[str, Schema] = {
    "Error": obj(("error",), error=STRING),
    "File": obj(tuple(_FILE), **_FILE),
    "FilePage": obj(
        (*_PAGE, "state", "q", "states", "waiting", "stuck"),
        **_PAGE,
        state=nullable(STRING),
        q=STRING,
        states={"type": "object", "additionalProperties": INT},
        since=STRING,
        until=STRING,
        waiting=array(fields(path=STRING, queued_at=NUMBER, priority=INT)),
        stuck=array(fields(path=STRING, reason=STRING)),
        markers=array(
            fields(path=STRING, waiting_for=STRING, since=NUMBER, age_s=NUMBER, late=BOOL)
        ),
        config=nullable(STRING),
    ),
    "ErrorPage": obj(tuple(_PAGE), **_PAGE),
    "FileDetail": {
        "allOf": [
            ref("File"),
            obj(
                ("timeline", "summary", "input_path", "in_flight"),
                timeline=array(
                    fields(
                        ts=NUMBER,
                        from_state=nullable(STRING),
                        to_state=STRING,
                        attempt=nullable(INT),
                        reason=nullable(STRING),
                    )
                ),
                summary=nullable(OBJECT),
                summary_path=STRING,
                input_path=STRING,
                in_flight=nullable(OBJECT),
            ),
        ]
    },
    "Status": obj(
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
        in_flight=array(obj(("uid", "path"), uid=STRING, path=STRING)),
        stalled=array(_STALL),
        workers=obj(
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
            pids=array(INT),
            frozen=array(INT),
            stall_kills=INT,
            memory_limit_mb=nullable(INT),
            memory_exceeded=INT,
        ),
        journal=obj(("healthy",), healthy=BOOL),
        states={"type": "object", "additionalProperties": INT},
        stats=OBJECT,
        throughput=array(fields(minute=INT, processed=INT, failed=INT)),
        system=OBJECT,
        pipeline_outline=STRING,
        token_required=BOOL,
        trace=BOOL,
        notify=array(  # each webhook target's outbox (daemon.webhooks)
            fields(
                name=STRING,
                target=STRING,
                pending=INT,
                max_pending=INT,
                sent=INT,
                failed_attempts=INT,
                dropped=INT,
                failing=BOOL,
                last_error=nullable(STRING),
                last_ok_age_s=nullable(NUMBER),
                oldest_age_s=nullable(NUMBER),
            )
        ),
        markers=array(  # files waiting for a ready marker (daemon.markers)
            fields(path=STRING, waiting_for=STRING, since=NUMBER, age_s=NUMBER, late=BOOL)
        ),
    ),
    "Pipeline": obj(
        ("nodes", "edges", "outline", "routes", "processors", "tags", "live"),
        nodes=array(obj(("id", "kind", "label"), id=STRING, kind=STRING, label=STRING)),
        edges=array(obj(("id",), id=STRING)),
        outline=STRING,
        routes=array(STRING),
        processors=OBJECT,
        tags={"type": "object", "additionalProperties": INT},
        traces=array(OBJECT),
        live=OBJECT,
    ),
    "ReplayMatch": fields(
        filter=_FILTER,
        described=STRING,
        count=INT,
        too_many=BOOL,
        max=INT,
        files=array(obj(("uid", "rel"), uid=STRING, rel=STRING)),
    ),
    "Replayed": fields(
        filter=_FILTER,
        requeued=array(fields(uid=STRING, path=STRING)),
        skipped=array(fields(uid=STRING, error=STRING)),
    ),
    "FileView": obj(
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
        lines=array(fields(number=INT, text=STRING, more=INT, more_known=BOOL)),
        start=INT,
        count=INT,
        q=STRING,
        next=nullable(INT),
        partial=BOOL,
        position=INT,
        size=INT,
        total=nullable(INT),
        links=fields(next=nullable(STRING), previous=nullable(STRING), first=nullable(STRING)),
        sheets=array(STRING),
        sheet=INT,
        sheet_urls=array(STRING),
        rows=array(array(STRING)),
        more_rows=BOOL,
        more_columns=BOOL,
        more_url=nullable(STRING),
        reason=STRING,
    ),
    "History": fields(
        period={"enum": ["hour", "day", "week"]},
        periods=array(STRING),
        span_s=INT,
        bucket_s=INT,
        route=nullable(STRING),
        now=NUMBER,
        buckets=array(fields(start=NUMBER, end=NUMBER, processed=INT, failed=INT)),
        totals=fields(processed=INT, failed=INT, failure_rate=nullable(NUMBER)),
        routes=array(
            fields(route=nullable(STRING), processed=INT, failed=INT, failure_rate=nullable(NUMBER))
        ),
        query_ms=NUMBER,
    ),
    "ReprocessMatch": fields(
        filter=_REPROCESS_FILTER,
        described=STRING,
        count=INT,
        too_many=BOOL,
        max=INT,
        files=array(
            obj(
                ("uid", "rel", "state"),
                uid=STRING,
                rel=STRING,
                state=STRING,
                route=nullable(STRING),
                config_sha256=nullable(STRING),
            )
        ),
    ),
    "Reprocessed": fields(
        filter=_REPROCESS_FILTER,
        reprocessed=array(fields(uid=STRING, path=STRING)),
        skipped=array(fields(uid=STRING, error=STRING)),
    ),
    "Config": obj(
        ("sha256", "path", "first_loaded", "last_loaded", "processed", "failed", "current"),
        sha256=STRING,
        path=STRING,
        version={},
        description=nullable(STRING),
        first_loaded=NUMBER,
        last_loaded=NUMBER,
        loads=INT,
        files={"type": "object", "additionalProperties": INT},
        processed=INT,
        failed=INT,
        produced=INT,
        current=BOOL,
    ),
    "Batch": obj(
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
        finished=nullable(NUMBER),
        report=nullable(OBJECT),
    ),
    "Preview": obj(
        ("config", "errors"),
        config={"enum": ["active", "edited"]},
        errors=array(_PROBLEM),
        route=nullable(fields(index=INT, describe=STRING)),
        metadata=OBJECT,
        outputs={"type": "object", "additionalProperties": fields(lines=array(STRING), total=INT)},
        trace=array(OBJECT),
        summary=OBJECT,
    ),
}

_JOB = {
    "id": INT, "source": STRING, "glob": nullable(STRING),
    "state": {"enum": ["scanning", "running", "done", "cancelled"]},
    "created": NUMBER, "finished": nullable(NUMBER), "error": nullable(STRING),
    **{k: INT for k in ("total_files", "total_bytes", "done_files", "done_bytes", "failed_files",
                        "failed_bytes", "gone_files", "pending_files", "pending_bytes")},
}  # fmt: skip
SCHEMAS["SourceJob"] = obj(tuple(_JOB), **_JOB)
SCHEMAS["Sources"] = fields(
    sources=array(obj(
        ("name", "path", "adhoc", "watcher", "error", "files", "bytes", "total_files", "rate",
         "last_errors", "last_scan", "scanning"),
        name=STRING, path=STRING, adhoc=BOOL, watcher=nullable(STRING), error=nullable(STRING),
        files={"type": "object", "additionalProperties": INT},
        bytes={"type": "object", "additionalProperties": INT},
        total_files=INT, rate=fields(files_per_s=NUMBER, bytes_per_s=NUMBER),
        last_errors=array(fields(at=NUMBER, path=STRING, error=STRING)),
        last_scan=nullable(OBJECT), scanning=BOOL, finalised=INT, after=STRING, results=STRING,
    )),
    jobs=array(ref("SourceJob")),
)  # fmt: skip
