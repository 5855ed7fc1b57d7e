"""The contract between the engine, its processors and the daemon.

A processor is a class: options arrive as keyword arguments to `__init__`, `process(tag,
line)` is called once per line that reaches the node's tag, and the optional `start(ctx)`
and `flush()` are called at the start and end of every file. A fresh instance is made for
every file, so per-file state lives in ordinary attributes. A plain function
`line -> str | None` is adapted into a processor automatically (see `processors.nodes`).

`process` and `flush` return what the node emits:

* `None` — nothing (the line is dropped);
* a `str` or a `dict` — one line for the node's first `to` tag (a `dict` is a record: an
  output writes it as one JSON line);
* anything else is iterated as `(next_tag, line)` pairs (a generator that `yield`s pairs
  is the usual way to fan out or route).

Built-ins may also implement `process_batch(tag, values, origins, out)`, a faster path the
engine prefers: `values` is a list of lines, `origins` their source line numbers, and
`out.put(tag, values, origins)` emits a list at once. Nothing else changes for them. And
`flush_batch(out)` instead of `flush()`: what a node held back (parse_log's last record,
which more lines could still have joined) is emitted under its own line number, not as
coming from no line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# A value flowing between nodes: a text line, a record (dict) or a CSV row (list).
Line = Any
Emitted = None | str | dict[str, Any] | Iterable[tuple[str, Line]]


def field_of(line: Line, field: str) -> Any:
    """A record's field, or None for text lines and records without it."""
    return line.get(field) if isinstance(line, dict) else None


class ProcessorError(Exception):
    """A permanent failure of one file: the daemon moves it to failed/ at once.

    Carries where it happened, for the file's summary and the dashboard. `traceback` holds
    the formatted traceback of a user processor's own exception, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        processor: str | None = None,
        tag: str | None = None,
        line: int | None = None,
        error_type: str | None = None,
        traceback: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.processor = processor
        self.tag = tag
        self.line = line
        self.error_type = error_type or type(self).__name__
        self.traceback = traceback

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "type": self.error_type,
            "message": self.message,
            "processor": self.processor,
            "tag": self.tag,
            "line": self.line,
        }
        if self.traceback:
            data["traceback"] = self.traceback
        return data


@dataclass
class Context:
    """What a node knows about the file it is processing (passed to `start`).

    `aggregates` is shared by every node of the file and lands in the file's summary:
    write JSON-able values under your node's `name`.
    """

    name: str
    to: tuple[str, ...]
    rel_path: str
    start_tag: str
    metadata: dict[str, str] = field(default_factory=dict)
    aggregates: dict[str, Any] = field(default_factory=dict)
    header: list[str] | None = None  # the CSV header row, when the reader read one


@runtime_checkable
class Processor(Protocol):
    """What a user processor implements; `start` and `flush` are optional."""

    def process(self, tag: str, line: Line) -> Emitted:
        """Handle one line that reached `tag`; return what to emit (see module doc)."""
        ...


class Outbox(Protocol):
    """Where a batch-capable processor puts what it emits."""

    total: int  # lines put so far (the engine counts a node's output with it)

    def put(self, tag: str, values: list[Line], origins: Sequence[int]) -> None: ...
