"""`http_lookup`: each record is looked up over HTTP and the answer merged into it.

The URL (and a POST's JSON body) is a template of the record's fields; a batch's lookups
run `concurrency` at a time in threads and the records leave in input order. A request
already made in this file is answered from the file's cache. What a lookup that fails
after its retries does is the config's choice: the record goes to `failed_tag` with its
`lookup_error`, or (`fail_file`) the whole file fails. The HTTP itself (retries,
back-off, the rate limit shared by every worker, the bearer token) is
`processors._lookup_client`'s.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import structlog

from config import ConfigError
from config import values as opt
from processors._lookup_client import Caller, Outcome, Request, Settings, Token, shared_rate
from processors._lookup_rate import state_path
from processors.base import Context, Line, Outbox, ProcessorError

log = structlog.get_logger(__name__)

_WHOLE_FIELD = re.compile(r"\{([^{}:!]+)\}")
_RULE_KEYS = {"status", "field", "equals", "tag"}
Fields = Mapping[str, Any]


class MissingField(Exception):
    """A template names a field the record lacks (or holds null)."""


class Template:
    """A string with `{field}` placeholders, rendered from a record's fields; `encode`
    URL-encodes every value (for URLs)."""

    def __init__(self, key: str, text: str, encode: bool) -> None:
        self.encode = encode
        self.parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigError(key, f"invalid template {text!r}: {exc}", "write {{ for {") from None
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name or spec or conversion):
                raise ConfigError(key, f"invalid placeholder in {text!r}", "use {field_name}")
            self.parts.append((literal, name))

    def render(self, fields: Fields) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                text = _text(_field(fields, name))
                out.append(quote(text, safe="") if self.encode else text)
        return "".join(out)


def _field(fields: Fields, name: str) -> Any:
    value = fields.get(name)
    if value is None:
        raise MissingField(f"record has no field {name!r}")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _body(key: str, value: Any) -> Callable[[Fields], Any]:
    """A JSON body template: a string that is one `{field}` becomes that field's value
    (its type kept), other strings are templates; objects and lists are walked."""
    if isinstance(value, dict):
        items = [(k, _body(f"{key}.{k}", v)) for k, v in value.items()]
        return lambda fields: {k: render(fields) for k, render in items}
    if isinstance(value, list):
        elements = [_body(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return lambda fields: [render(fields) for render in elements]
    if isinstance(value, str):
        whole = _WHOLE_FIELD.fullmatch(value)
        if whole:
            name = whole.group(1)
            return lambda fields: _field(fields, name)
        template = Template(key, value, encode=False)
        return template.render
    return lambda fields: value


class Rule:
    """Routes a lookup's answer to `tag` when its `status` (one or a list) and/or its
    JSON's `field` (equal to `equals`) match."""

    def __init__(self, key: str, raw: Any) -> None:
        if not isinstance(raw, dict) or set(raw) - _RULE_KEYS or "tag" not in raw:
            raise ConfigError(key, 'expected {"tag", "status" and/or "field" with "equals"}')
        self.tag = opt.tag(f"{key}.tag", raw["tag"])
        status = raw.get("status")
        statuses = status if isinstance(status, list) else [] if status is None else [status]
        self.statuses = {opt.integer(f"{key}.status", s, 100, 599) for s in statuses}
        self.field = None if raw.get("field") is None else opt.string(f"{key}.field", raw["field"])
        if self.field is not None and "equals" not in raw:
            raise ConfigError(f"{key}.equals", f"missing (a rule on field {self.field!r})")
        if self.field is None and not self.statuses:
            raise ConfigError(key, 'a rule needs "status" or "field"')
        self.equals = raw.get("equals")

    def matches(self, status: int, data: Any) -> bool:
        if self.statuses and status not in self.statuses:
            return False
        if self.field is None:
            return True
        return isinstance(data, dict) and self.field in data and data[self.field] == self.equals


class HttpLookup:
    """Looks each record up at `url` (a `{field}` template, values URL-encoded) by GET or
    POST (`body`: a JSON template) and merges the JSON answer into it: under the key
    `merge`, at the top level (`"."`), or not at all (null). `route` rules send answers to
    tags by status or field; a lookup failing after `retries` goes to `failed_tag` (the
    first `to` tag if null) with `lookup_error`, or fails the file (`fail_file`)."""

    def __init__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        concurrency: int = 8,
        rate_per_s: float | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        token_url: str | None = None,
        token_field: str = "access_token",
        token_body: Any = None,
        merge: str | None = "response",
        route: Any = None,
        failed_tag: str | None = None,
        fail_file: bool = False,
        cache_max: int = 10000,
        max_response_bytes: int = 1 << 20,
        redirect_hosts: Any = None,
    ) -> None:
        env = os.environ
        url = opt.expand_env("url", opt.string("url", url, empty=False), env)
        self.url = Template("url", url, encode=True)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError("url", f"expected an http:// or https:// URL, got {url!r}")
        self.method = opt.choice("method", method, ("GET", "POST"))
        if body is not None and self.method != "POST":
            raise ConfigError("body", "a body goes with method POST")
        self.body = None if body is None else _body("body", body)
        headers = {
            k: opt.expand_env(f"headers.{k}", v, env)
            for k, v in opt.string_map("headers", headers).items()
        }
        self.settings = Settings(
            timeout_s=opt.number("timeout_s", timeout_s, 0.001),
            retries=opt.integer("retries", retries, 0, 20),
            backoff_s=opt.number("backoff_s", backoff_s, 0, 60),
            headers=headers,
            concurrency=opt.integer("concurrency", concurrency, 1, 256),
            max_response_bytes=opt.integer("max_response_bytes", max_response_bytes, 1, 1 << 30),
            redirect_hosts=_hosts("redirect_hosts", redirect_hosts),
        )
        self.rate_per_s = (
            None if rate_per_s is None else opt.number("rate_per_s", rate_per_s, 0.001)
        )
        self.token: Token | None = None
        if token_url is not None:
            token_field = opt.string("token_field", token_field, empty=False)
            token_raw = {} if token_body is None else opt.typed("token_body", token_body, dict)
            self.token = Token(
                opt.expand_env("token_url", opt.string("token_url", token_url, empty=False), env),
                token_field,
                {
                    k: opt.expand_env(f"token_body.{k}", v, env) if isinstance(v, str) else v
                    for k, v in token_raw.items()
                },
            )
        self.merge = None if merge is None else opt.string("merge", merge, empty=False)
        rules = [] if route is None else opt.typed("route", route, list)
        self.rules = [Rule(f"route[{i}]", r) for i, r in enumerate(rules)]
        self.failed_tag = opt.optional_tag("failed_tag", failed_tag)
        self.fail_file = opt.boolean("fail_file", fail_file)
        self.cache_max = opt.integer("cache_max", cache_max, 0)
        self.host = urlsplit(url).netloc
        self.cache: dict[Request, Outcome] = {}
        self.counts = {"lookups": 0, "cache_hits": 0, "failed": 0}

    def targets(self, to: tuple[str, ...]) -> list[str]:
        tags = [*to, *(r.tag for r in self.rules)]
        if self.failed_tag:
            tags.append(self.failed_tag)
        return list(dict.fromkeys(tags))

    def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.default = ctx.to[0]
        self.failed = self.failed_tag or self.default
        rate = None
        if self.rate_per_s is not None:
            rate = shared_rate(state_path(self.host), self.rate_per_s)
        self.caller = Caller(self.settings, self.token, rate)

    def process(self, tag: str, line: Line) -> list[tuple[str, Line]]:
        out = _Collected()
        self.process_batch(tag, [line], [0], out)
        return out.pairs

    def process_batch(
        self, tag: str, values: list[Line], origins: Sequence[int], out: Outbox
    ) -> None:
        requests = [self._request(value) for value in values]
        answers = self._answers([r for r in requests if isinstance(r, Request)])
        emitted: dict[str, tuple[list[Line], list[int]]] = {}
        for value, origin, req in zip(values, origins, requests, strict=True):
            answer = answers[req] if isinstance(req, Request) else req
            next_tag, result, error = self._result(value, answer)
            if error is not None:
                self.counts["failed"] += 1
                if self.fail_file:
                    raise ProcessorError(
                        f"lookup failed: {error}", line=origin or None, error_type="LookupFailed"
                    )
                log.debug("lookup_failed", line=origin or None, reason=error)
            bucket = emitted.setdefault(next_tag, ([], []))
            bucket[0].append(result)
            bucket[1].append(origin)
        for next_tag, (vals, origs) in emitted.items():
            out.put(next_tag, vals, origs)

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = {
            **self.counts,
            **self.caller.stats.counts,
            "tokens": self.token.fetched if self.token else 0,
        }

    def _fields(self, value: Line) -> Fields:
        if isinstance(value, dict):
            return value
        if isinstance(value, list):
            header = self.ctx.header
            if header is not None:
                return dict(zip(header, value, strict=False))
            return {str(i): v for i, v in enumerate(value)}
        return {"line": value}

    def _request(self, value: Line) -> Request | str:
        """The request a record makes, or why it can make none."""
        fields = self._fields(value)
        try:
            url = self.url.render(fields)
            body = None if self.body is None else orjson.dumps(self.body(fields))
        except MissingField as exc:
            return str(exc)
        return Request(self.method, url, body)

    def _answers(self, requests: list[Request]) -> dict[Request, Outcome]:
        """Every request's outcome: from the file's cache, or looked up (concurrently)."""
        self.counts["lookups"] += len(requests)
        answers = {r: self.cache[r] for r in requests if r in self.cache}
        todo = list(dict.fromkeys(r for r in requests if r not in answers))
        self.counts["cache_hits"] += len(requests) - len(todo)
        if todo:
            workers = min(self.settings.concurrency, len(todo))
            with self.caller.client() as client, ThreadPoolExecutor(workers) as pool:
                outcomes = pool.map(lambda r: self.caller.call(client, r), todo)
                answers.update(zip(todo, outcomes, strict=True))
            for req in todo:
                if self.cache_max:
                    if len(self.cache) >= self.cache_max:
                        del self.cache[next(iter(self.cache))]
                    self.cache[req] = answers[req]
        return answers

    def _result(self, value: Line, answer: Outcome | str) -> tuple[str, Line, str | None]:
        """Where a record goes, what it becomes, and why its lookup failed (if it did)."""
        if isinstance(answer, str):
            return self.failed, {**self._fields(value), "lookup_error": answer}, answer
        if answer.status is not None:
            for rule in self.rules:
                if rule.matches(answer.status, answer.data):
                    return rule.tag, self._merged(value, answer.data), None
        error = _failure(answer, self.merge)
        if error is not None:
            return self.failed, {**self._fields(value), "lookup_error": error}, error
        return self.default, self._merged(value, answer.data), None

    def _merged(self, value: Line, data: Any) -> Line:
        if self.merge is None:
            return value
        record = dict(self._fields(value))
        if self.merge == ".":
            if isinstance(data, dict):
                record.update(data)
        else:
            record[self.merge] = data
        return record


def _hosts(key: str, value: Any) -> frozenset[tuple[str, int | None]]:
    """Hosts a redirect may lead to, as (host, port): `host` (any port) or `host:port`."""
    hosts = [] if value is None else opt.typed(key, value, list)
    out = set()
    for i, host in enumerate(hosts):
        try:
            parts = urlsplit(f"//{host}") if isinstance(host, str) else None
            port = None if parts is None else parts.port  # ValueError if not a number
        except ValueError:
            parts = None
        if parts is None or not parts.hostname or parts.netloc != host or "@" in host:
            raise ConfigError(f"{key}[{i}]", f"expected a host or host:port, got {host!r}",
                              "api.example.com or api.example.com:8443")  # fmt: skip
        out.add((parts.hostname, port))
    return frozenset(out)


def _failure(answer: Outcome, merge: str | None) -> str | None:
    """Why a lookup's outcome is no answer for the record, or None when it is one."""
    if answer.error is not None:
        return answer.error
    if answer.status is None or not 200 <= answer.status < 300:
        return f"HTTP {answer.status}"
    if merge == "." and not isinstance(answer.data, dict):
        return 'response is not a JSON object (merge ".")'
    return None


class _Collected:
    """An outbox for one line's lookup through `process` (the line-at-a-time path)."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Line]] = []
        self.total = 0

    def put(self, tag: str, values: list[Line], origins: Sequence[int]) -> None:
        self.total += len(values)
        self.pairs.extend((tag, v) for v in values)
