"""`main.py --reprocess FILTER [--yes]`: reprocessing from the command line, for scripts.

It asks the running daemon's dashboard API at --host/--port (FOLDERD_TOKEN as the bearer
token) what FILTER matches (`GET /api/reprocess`) and prints it as JSON; with `--yes` it
then confirms that count (`POST /api/reprocess` with `expect`), exactly as the Reprocess
page does, so files that finished or moved in between make it refuse (exit 1) rather than
act on another set. FILTER is `key=value` parts separated by spaces (`config`, `state`,
`route`, `name`, `since`, `until`); `since`/`until` also take an age such as `90s`, `15m`,
`1h` or `2d` (that long before now). Every request has a total deadline (`net.fetch`).
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from config import ConfigError
from config.settings import Settings
from daemon.errors import DaemonError
from dashboard.reprocess import FIELDS
from net.fetch import NoAnswer, client, fetch

TIMEOUT_S = 60.0  # a reprocess of 10,000 files moves them all within one request
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class _Bounds:
    timeout_s: float = TIMEOUT_S
    max_response_bytes: int = 64 << 20
    redirect_hosts: frozenset[tuple[str, int | None]] = frozenset()


def parse_filter(text: str, now: float | None = None) -> dict[str, str]:
    """`config=1a2b since=1h` → {"config": "1a2b", "since": "<epoch seconds>"}; ConfigError
    for a part that is not `key=value` with a known key."""
    params: dict[str, str] = {}
    for part in text.split():
        key, eq, value = part.partition("=")
        if not eq or key not in FIELDS:
            raise ConfigError("--reprocess", f"cannot use {part!r}",
                              f"parts are key=value, keys: {', '.join(FIELDS)}")  # fmt: skip
        if key in ("since", "until") and (age := _AGE.fullmatch(value)):
            ago = float(age.group(1)) * _UNITS[age.group(2)]
            value = repr((time.time() if now is None else now) - ago)
        params[key] = value
    return params


def _base(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "", "::"):  # listening everywhere: this host answers
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@functools.cache
def _ssl() -> Any:
    return httpx.create_ssl_context()


def _call(settings: Settings, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if settings.token:
        headers["Authorization"] = f"Bearer {settings.token}"
    url = _base(settings) + path
    data = json.dumps(body).encode() if body is not None else None
    with client(_ssl(), httpx.Limits(max_connections=1), TIMEOUT_S) as http:
        try:
            answer = fetch(http, _Bounds(), method, url, data, headers)
        except NoAnswer as exc:
            raise DaemonError(f"no folderd dashboard answers at {_base(settings)} "
                              f"({exc.problem}): is it running, with this --host and --port?",
                              exit_code=3) from None  # fmt: skip
    try:
        return answer.status, json.loads(answer.body)
    except ValueError:
        raise DaemonError(f"{method} {path}: HTTP {answer.status}, not JSON", 3) from None


def reprocess(settings: Settings) -> int:
    """Count (and with --yes, reprocess) what the filter matches; the exit code."""
    params = parse_filter(settings.reprocess or "")
    status, match = _call(settings, "GET", "/api/reprocess?" + urlencode(params))
    if status != 200:
        raise DaemonError(f"GET /api/reprocess: HTTP {status}: {match.get('error')}", 2)
    match.pop("uids", None)
    if not settings.confirm or match["count"] == 0:
        print(json.dumps(match, indent=2, ensure_ascii=False))
        return 0
    status, done = _call(settings, "POST", "/api/reprocess", {**params, "expect": match["count"]})
    if status == 409:
        print(f"folderd: {done.get('error')}", file=sys.stderr)
        return 1
    if status != 200:
        raise DaemonError(f"POST /api/reprocess: HTTP {status}: {done.get('error')}", 2)
    print(json.dumps(done, indent=2, ensure_ascii=False))
    return 0
