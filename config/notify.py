"""`notify`: the webhooks a config sends its events to, checked into typed targets.

Each target names a URL, the events it wants, optional headers and a secret that signs
every body (`daemon.webhooks`). `${VAR}` in the URL, a header or the secret is expanded
from the environment when the config loads, as in sink settings; what a target shows of
itself (`describe()`) leaves out the URL's path and query, its headers and its secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from config import values
from config.errors import ConfigError

Event = Literal["file.processed", "file.failed", "batch.done", "drain.done", "queue.paused",
                "queue.resumed"]  # fmt: skip
EVENTS: tuple[Event, ...] = get_args(Event)
KEYS = ("name", "url", "events", "headers", "secret", "timeout_s", "max_pending",
        "backoff_s", "max_backoff_s")  # fmt: skip
# Headers folderd sets on every notification itself; a config may not set them.
OWN_HEADERS = ("content-type", "content-length", "host", "user-agent", "idempotency-key",
               "folderd-event", "folderd-delivery", "folderd-signature")  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]{1,64}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110)


@dataclass(frozen=True)
class NotifyTarget:
    """One webhook receiver."""

    name: str  # its name in the outbox, metrics and /health ("notify[0]" by default)
    url: str = field(repr=False)  # its path or query may hold a token
    events: frozenset[Event] = frozenset()
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0  # one attempt, from connecting to the last byte of the answer
    max_pending: int = 10_000  # notifications held for it at most; more are dropped
    backoff_s: float = 1.0  # the first retry's delay, doubled each failure (with jitter)
    max_backoff_s: float = 300.0

    def describe(self) -> str:
        """Where it goes, without anything that may be a secret (path, query, headers)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        signed = "signed" if self.secret else "unsigned"
        events = ", ".join(sorted(self.events))
        return f"{self.name}: {parts.scheme}://{host}{port}/… ({signed}; {events})"

    def secrets(self) -> tuple[str, ...]:
        """Values an error message must never show."""
        found = [self.secret or "", *self.headers.values()]
        parts = urlsplit(self.url)
        found += [parts.password or "", parts.query, parts.path if len(parts.path) > 1 else ""]
        return tuple(s for s in found if s)


def parse_notify(
    raw: Any, environ: Mapping[str, str]
) -> tuple[tuple[NotifyTarget, ...], list[ConfigError]]:
    """The `notify` list at `$.notify`: its targets, and every problem found."""
    errors: list[ConfigError] = []
    if not isinstance(raw, list):
        return (), [ConfigError("$.notify", f"expected a list, got {values.kind(raw)}")]
    targets: list[NotifyTarget] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        path = f"$.notify[{i}]"
        try:
            target = _target(item, path, f"notify[{i}]", environ, errors)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if target is None:
            continue
        if target.name in names:
            errors.append(ConfigError(f"{path}.name", f"duplicate name {target.name!r}",
                                      "each target needs its own name"))  # fmt: skip
        names.add(target.name)
        targets.append(target)
    return tuple(targets), errors


def _target(
    item: Any, path: str, default_name: str, env: Mapping[str, str], errors: list[ConfigError]
) -> NotifyTarget | None:
    if not isinstance(item, dict):
        raise ConfigError(path, f"expected an object, got {values.kind(item)}")
    for key in item:
        if key not in KEYS:
            errors.append(
                ConfigError(f"{path}.{key}", "unknown key", f"allowed: {', '.join(KEYS)}")
            )
    if "url" not in item:
        raise ConfigError(f"{path}.url", "missing", "the receiver's http:// or https:// URL")
    url = values.expand_env(
        f"{path}.url", values.string(f"{path}.url", item["url"], empty=False), env
    )
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  # raises for a port that is not one
    except ValueError:
        raise ConfigError(f"{path}.url", "the URL's port is not a number from 0 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{path}.url", "expected an http:// or https:// URL with a host",
                          "e.g. https://hooks.example.com/folderd")  # fmt: skip
    name = values.string(f"{path}.name", item.get("name", default_name), empty=False)
    if not _NAME.fullmatch(name):
        hint = "letters, digits, '_', '.', '-', '[' and ']', at most 64"
        errors.append(ConfigError(f"{path}.name", f"invalid name {name!r}", hint))
    events = values.strings(f"{path}.events", item.get("events", list(EVENTS)))
    for j, event in enumerate(events):
        if event not in EVENTS:
            errors.append(ConfigError(f"{path}.events[{j}]", f"unknown event {event!r}",
                                      f"one of {', '.join(EVENTS)}"))  # fmt: skip
    headers = {}
    for key, value in values.string_map(f"{path}.headers", item.get("headers")).items():
        where = f"{path}.headers.{key}"
        if not _TOKEN.fullmatch(key) or key.lower() in OWN_HEADERS:
            errors.append(ConfigError(where, "not a header a config may set",
                                      f"folderd sets {', '.join(OWN_HEADERS)} itself"))  # fmt: skip
            continue
        value = values.expand_env(where, value, env)
        if "\r" in value or "\n" in value:
            errors.append(ConfigError(where, "a header value cannot hold a line break"))
            continue
        headers[key] = value
    secret = None
    if item.get("secret") is not None:
        where = f"{path}.secret"
        secret = values.expand_env(where, values.string(where, item["secret"], empty=False), env)
        if not secret:
            errors.append(ConfigError(where, "empty once expanded", "set the variable it names"))
    return NotifyTarget(
        name=name,
        url=url,
        events=frozenset(e for e in EVENTS if e in events),
        headers=headers,
        secret=secret or None,
        timeout_s=_number(item, "timeout_s", path, 0.1, 300.0, errors),
        max_pending=int(_number(item, "max_pending", path, 1, 10_000_000, errors)),
        backoff_s=_number(item, "backoff_s", path, 0.01, 3600.0, errors),
        max_backoff_s=_number(item, "max_backoff_s", path, 0.01, 86_400.0, errors),
    )


def _number(
    item: dict[str, Any], key: str, path: str, low: float, high: float, errors: list[ConfigError]
) -> float:
    """`item[key]` from `low` to `high`; NotifyTarget's default when left out or wrong."""
    default: float = getattr(NotifyTarget, key)
    if key not in item:
        return default
    try:
        if key == "max_pending":
            return values.integer(f"{path}.{key}", item[key], int(low), int(high))
        return values.number(f"{path}.{key}", item[key], low, high)
    except ConfigError as exc:
        errors.append(exc)
        return default
