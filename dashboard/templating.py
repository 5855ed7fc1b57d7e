"""The Jinja2 environment: autoescape everywhere, StrictUndefined, and the few filters the
templates use to show times, sizes and durations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jinja2
from starlette.templating import Jinja2Templates

from dashboard.params import local_input

TEMPLATES = Path(__file__).parent / "templates"


def size(n: Any) -> str:
    if n is None:
        return "–"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def duration(s: Any) -> str:
    if s is None:
        return "–"
    s = float(s)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def ago(ts: Any) -> str:
    if ts is None:
        return "–"
    return duration(max(0.0, time.time() - float(ts))) + " ago"


def when(ts: Any) -> str:
    if ts is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))


def pct(x: Any) -> str:
    return "–" if x is None else f"{x * 100:.1f}%"


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates ship with the code: no stat() per render
    )
    env.filters.update(size=size, duration=duration, ago=ago, when=when, pct=pct,
                       local_input=local_input)  # fmt: skip
    return Jinja2Templates(env=env)
