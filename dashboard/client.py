"""The command line's way into a running daemon: `main.py --sync` and `--sync-cancel` ask
its dashboard API (`/api/sources`) at --host/--port, with FOLDERD_TOKEN as the bearer
token, and print what it answered as JSON; `--wait` follows the job's progress on stderr
until it ends. Every request has a deadline."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from config.settings import Settings
from daemon.errors import DaemonError
from formats.names import shown

TIMEOUT_S = 15.0
POLL_S = 0.5
FINAL = ("done", "cancelled")


class _Client:
    def __init__(self, settings: Settings) -> None:
        host = settings.host
        if host in ("0.0.0.0", "", "::"):  # listening everywhere: this host answers
            host = "127.0.0.1"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self.base = f"http://{host}:{settings.port}"
        self.token = settings.token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return json.loads(resp.read(1 << 20))
        except urllib.error.HTTPError as exc:
            try:
                why = json.loads(exc.read(1 << 16)).get("error")
            except (ValueError, AttributeError):
                why = None
            raise DaemonError(f"{method} {path}: {exc.code} {why or exc.reason}") from None
        except (OSError, ValueError) as exc:
            why = f"no folderd dashboard answers at {self.base} ({exc})"
            raise DaemonError(f"{why}: is it running, with this --host and --port?") from None


def sync(settings: Settings) -> int:
    """Start (or cancel) a job on the running daemon; 0 if it went as asked."""
    req = settings.sync
    if req is None:
        raise DaemonError("nothing to ask")
    client = _Client(settings)
    if req.cancel is not None:
        print(json.dumps(client.call("POST", f"/api/sources/jobs/{req.cancel}/cancel"), indent=2))
        return 0
    target = req.target or ""
    # a folder's name crosses the API as shown() writes it (it need not be UTF-8)
    body: dict[str, Any] = {"path": shown(target)} if "/" in target else {"source": target}
    if req.glob:
        body["glob"] = req.glob
    job = client.call("POST", "/api/sources", body)
    if req.wait:
        while job["state"] not in FINAL:
            _progress(job)
            time.sleep(POLL_S)
            job = client.call("GET", f"/api/sources/jobs/{job['id']}")
        _progress(job, end="\n")
    print(json.dumps(job, indent=2))
    return 1 if req.wait and (job["failed_files"] or job["state"] != "done") else 0


def _progress(job: dict[str, Any], end: str = "\r") -> None:
    done = job["done_files"] + job["failed_files"] + job["gone_files"]
    more = "+" if job["state"] == "scanning" else ""
    print(f"job {job['id']} {job['state']}: {done}/{job['total_files']}{more} files, "
          f"{job['done_bytes'] >> 20}/{job['total_bytes'] >> 20} MiB, "
          f"{job['failed_files']} failed", end=end, file=sys.stderr, flush=True)  # fmt: skip
