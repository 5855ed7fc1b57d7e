"""An example plugin: masks e-mail addresses, and routes lines that had any.

Use it from pipeline_config.json (run folderd from the repository root, or put the
package on PYTHONPATH):

    {"name": "redact", "tag": "log", "use": "examples.plugins.redact:Redact",
     "to": ["clean", "redacted"], "options": {"mask": "<email>"}}
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from processors import Context

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class Redact:
    """Replaces e-mail addresses with `mask`. Lines that contained one go to the second
    `to` tag (when there is one), the others to the first; the count goes to the summary."""

    def __init__(self, mask: str = "<redacted>") -> None:
        self.mask = mask  # options arrive as keyword arguments, checked at load time
        self.found = 0  # a fresh instance per file: plain attributes are per-file state

    def start(self, ctx: Context) -> None:
        self.ctx = ctx
        self.clean = ctx.to[0]
        self.redacted = ctx.to[-1]

    def process(self, tag: str, line: str) -> Iterator[tuple[str, str]]:
        text, n = EMAIL.subn(self.mask, line)
        self.found += n
        yield (self.redacted if n else self.clean), text

    def flush(self) -> None:
        self.ctx.aggregates[self.ctx.name] = {"emails": self.found}


def shout(line: str) -> str | None:
    """A plain function works too: return the new line, or None to drop it."""
    return line.upper() if line.strip() else None
