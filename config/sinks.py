"""Sink settings: where an output's records (`outputs.<tag>.sink`) or the input itself
(`deliver`) are delivered, checked into typed objects with located errors.

`${VAR}` in any sink string is expanded from the environment when the config loads (a
variable that is not set is an error naming the key, never the value). Everything a sink
shows of itself goes through `describe()`, which redacts passwords; `secrets()` lists the
values an error message must never contain, so `redact()` can scrub them out of whatever
a driver says.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

from config import values
from config.errors import ConfigError

SqlType = Literal["text", "integer", "real", "boolean", "timestamp", "json"]
ChecksumWhen = Literal["when_supported", "when_required"]  # botocore's two settings' words
SQL_TYPES: tuple[SqlType, ...] = get_args(SqlType)
ROW_COLUMNS = ("uid", "source", "line")  # every row gets these; a declared column may not
CHECKSUM_WHEN: tuple[ChecksumWhen, ...] = get_args(ChecksumWhen)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PASSWORD_PARAM = re.compile(r"(?i)((?:^|[?&;])password=)[^&;]*")
MASK = "***"


@dataclass(frozen=True)
class SqlSinkConfig:
    """Rows into a table of SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://…`)."""

    url: str
    table: str
    columns: tuple[tuple[str, SqlType], ...] = ()  # (name, type); none: one JSON column
    create: bool = True
    timeout_s: float = 10.0
    name: str = ""  # where it was declared: "outputs.rows"
    type: Literal["sql"] = field(default="sql", init=False)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    def describe(self, obj: str = "") -> str:
        """What and where, for outlines, summaries and errors (password redacted)."""
        cols = f"{len(self.columns)} column(s)" if self.columns else "one JSON column"
        return f"sql {redact_url(self.url)} table {self.table} ({cols})"

    def secrets(self) -> tuple[str, ...]:
        return _url_secrets(self.url)


@dataclass(frozen=True)
class S3SinkConfig:
    """Objects in an S3-compatible bucket; credentials from the standard AWS chain."""

    bucket: str
    prefix: str = ""  # may name the route's metadata groups: "{host}/{date}/"
    endpoint_url: str | None = None
    region: str | None = None
    storage_class: str | None = None
    skip_existing: bool = False
    request_checksum_calculation: ChecksumWhen = "when_supported"
    response_checksum_validation: ChecksumWhen = "when_supported"
    timeout_s: float = 30.0
    name: str = ""  # "outputs.parsed", "deliver[0]"
    type: Literal["s3"] = field(default="s3", init=False)

    def describe(self, obj: str = "") -> str:
        """Where `obj` goes, for outlines, summaries and errors (password redacted)."""
        where = f" at {redact_url(self.endpoint_url)}" if self.endpoint_url else ""
        skip = " (skip existing)" if self.skip_existing else ""
        return f"s3 s3://{self.bucket}/{self.prefix}{obj}{where}{skip}"

    def secrets(self) -> tuple[str, ...]:
        return _url_secrets(self.endpoint_url or "")


SinkConfig = SqlSinkConfig | S3SinkConfig


def redact_url(url: str) -> str:
    """`url` with its password (and any `password=` parameter) replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.password is None and not _PASSWORD_PARAM.search(parts.query):
        return url  # nothing to hide (and urlunsplit would drop sqlite:////abs's slash)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    query = _PASSWORD_PARAM.sub(rf"\g<1>{MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` (a driver's error message, say) with every secret value replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _url_secrets(url: str) -> tuple[str, ...]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return (url,)
    found = [m.group(0).partition("=")[2] for m in _PASSWORD_PARAM.finditer(parts.query)]
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    return tuple(s for s in found if s)


class _Spec:
    """One sink object being checked: collects its errors, expands its strings."""

    def __init__(self, raw: dict[str, Any], path: str, environ: Mapping[str, str]) -> None:
        self.raw, self.path, self.environ = raw, path, environ
        self.errors: list[ConfigError] = []

    def get(self, key: str, check: Any, default: Any, *args: Any) -> Any:
        if key not in self.raw:
            return default
        try:
            value = check(f"{self.path}.{key}", self.raw[key], *args)
            if isinstance(value, str):
                value = values.expand_env(f"{self.path}.{key}", value, self.environ)
            return value
        except ConfigError as exc:
            self.errors.append(exc)
            return default

    def required(self, key: str, hint: str) -> str | None:
        if key not in self.raw:
            self.errors.append(ConfigError(f"{self.path}.{key}", "missing", hint))
            return None
        text: str | None = self.get(key, values.string, None)
        return text

    def fail(self, key: str, message: str, hint: str = "") -> None:
        self.errors.append(ConfigError(f"{self.path}.{key}" if key else self.path, message, hint))


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ConfigError(key, f"expected seconds from 0 to 3600, got {values.kind(value)}")
    return float(value)


_PREFIX_HINT = "e.g. mirror/ or {host}/{date}/ (see the manual's S3 keys: docs/delivering/s3.md)"


def _prefix_problem(prefix: str, fields: list[str]) -> str | None:
    """Why S3 servers would not keep `prefix` as written (SeaweedFS rewrites `\\`, `//` and
    a leading `/`; MinIO refuses `.` and `..` parts), or why the keys under it would not
    each name one file (a `{group}` not followed by a last `/`)."""
    if prefix.startswith("/") or "//" in prefix:
        return "a leading '/' or a '//' in the prefix (SeaweedFS drops them, MinIO refuses them)"
    if "\\" in prefix or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in prefix):
        return "a backslash or control character in the prefix (SeaweedFS reads '\\' as '/')"
    if any(part.strip(" ") in (".", "..") for part in prefix.split("/")):
        return "a '.' or '..' part in the prefix (S3 servers refuse or collapse it)"
    if fields and not prefix.endswith("/"):
        return "a prefix with a {group} must end with '/' (else two files could share a key)"
    return None


def parse_sink(
    raw: Any,
    path: str,
    name: str,
    environ: Mapping[str, str],
    only: tuple[str, ...] = ("sql", "s3"),
) -> tuple[SinkConfig | None, list[ConfigError]]:
    """One sink object (`{"type": "sql", …}`) at JSON path `path`, and its problems."""
    if not isinstance(raw, dict):
        return None, [ConfigError(path, f"expected an object, got {values.kind(raw)}")]
    kind = raw.get("type")
    if kind not in only:
        got = "missing" if kind is None else f"unknown sink type {kind!r}"
        return None, [ConfigError(f"{path}.type", got, f"one of {', '.join(only)}")]
    spec = _Spec(raw, path, environ)
    sink = _sql(spec, name) if kind == "sql" else _s3(spec, name)
    return (None if spec.errors else sink), spec.errors


def _keys(spec: _Spec, allowed: tuple[str, ...]) -> None:
    for key in spec.raw:
        if key not in allowed:
            spec.fail(key, "unknown key", f"allowed: {', '.join(allowed)}")


def _sql(spec: _Spec, name: str) -> SqlSinkConfig | None:
    _keys(spec, ("type", "url", "table", "columns", "create", "timeout_s"))
    url = spec.required("url", "sqlite:///path/to.db or postgresql://user:pass@host/db")
    table = spec.required("table", "the table the rows go to")
    if url is not None and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        spec.fail(
            "url",
            f"unsupported database URL {redact_url(url)!r}",
            "sqlite:///path/to.db or postgresql://user:pass@host/db",
        )
    if table is not None and not all(_NAME.fullmatch(p) for p in table.split(".", 1)):
        spec.fail("table", f"invalid table name {table!r}", "letters, digits and '_'; schema.table")
    columns = []
    for col, kind in spec.get("columns", values.typed, {}, dict).items():
        key = f"columns.{col}"
        if not _NAME.fullmatch(col):
            spec.fail(key, f"invalid column name {col!r}", "letters, digits and '_'")
        elif col in ROW_COLUMNS:
            spec.fail(
                key, f"column {col!r} is folderd's", f"every row gets {', '.join(ROW_COLUMNS)}"
            )
        elif kind not in SQL_TYPES:
            spec.fail(
                key, f"unknown column type {values.kind(kind)}", f"one of {', '.join(SQL_TYPES)}"
            )
        else:
            columns.append((col, kind))
    if url is None or table is None:
        return None
    return SqlSinkConfig(
        url,
        table,
        tuple(columns),
        spec.get("create", values.boolean, SqlSinkConfig.create),
        spec.get("timeout_s", _seconds, SqlSinkConfig.timeout_s),
        name,
    )


def _s3(spec: _Spec, name: str) -> S3SinkConfig | None:
    _keys(
        spec,
        (
            "type",
            "bucket",
            "prefix",
            "endpoint_url",
            "region",
            "storage_class",
            "skip_existing",
            "request_checksum_calculation",
            "response_checksum_validation",
            "timeout_s",
        ),
    )
    bucket = spec.required("bucket", "the bucket's name")
    if bucket is not None and not _BUCKET.fullmatch(bucket):
        spec.fail(
            "bucket", f"invalid bucket name {bucket!r}", "3-63 lowercase letters, digits, '.', '-'"
        )
    prefix = spec.get("prefix", values.string, S3SinkConfig.prefix)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(prefix) if f is not None]
    except ValueError as exc:
        spec.fail(
            "prefix",
            f"invalid prefix template {prefix!r}: {exc}",
            "{group} names a route's regex group",
        )
        fields = []
    for f in fields:
        if not _NAME.fullmatch(f):
            spec.fail(
                "prefix", f"invalid placeholder {{{f}}}", "{group}: a route's regex group name"
            )
    if (why := _prefix_problem(prefix, fields)) is not None:
        spec.fail("prefix", f"{why}: {prefix!r}", _PREFIX_HINT)
    checks = {
        key: spec.get(key, values.choice, getattr(S3SinkConfig, key), CHECKSUM_WHEN)
        for key in ("request_checksum_calculation", "response_checksum_validation")
    }
    if bucket is None:
        return None
    return S3SinkConfig(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=spec.get(
            "endpoint_url",
            lambda k, v: values.string(k, v, empty=False),
            S3SinkConfig.endpoint_url,
        ),
        region=spec.get("region", values.string, S3SinkConfig.region),
        storage_class=spec.get("storage_class", values.string, S3SinkConfig.storage_class),
        skip_existing=spec.get("skip_existing", values.boolean, S3SinkConfig.skip_existing),
        timeout_s=spec.get("timeout_s", _seconds, S3SinkConfig.timeout_s),
        name=name,
        **checks,
    )
