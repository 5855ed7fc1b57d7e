"""Placeholder engine: every line goes to the `end` output unchanged.

Kept deliberately small until the tag-routed engine lands; its entry points are the
contract the daemon relies on (see the package docstring).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from processors.base import ProcessorError

OpenOutput = Callable[[str], TextIO]


class Pipeline:
    def __init__(self, raw: dict[str, Any] | None, trace: bool = False) -> None:
        self.raw = raw or {}
        self.trace = trace

    def run_file(self, stream: BinaryIO, rel_path: str, open_output: OpenOutput) -> dict[str, Any]:
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        out = open_output("out")
        lines = 0
        offset = 0
        pending = ""
        while chunk := stream.read(1 << 16):
            if b"\0" in chunk:
                raise ProcessorError(
                    f"binary input: NUL byte near offset {offset + chunk.index(b'\0')}",
                    line=lines + 1,
                    error_type="BinaryInput",
                )
            try:
                text = pending + decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise ProcessorError(
                    f"undecodable as utf-8 at byte offset {offset + exc.start}",
                    line=lines + 1 + pending.count("\n"),
                    error_type="UnicodeDecodeError",
                ) from None
            offset += len(chunk)
            *complete, pending = text.split("\n")
            for line in complete:
                out.write(line + "\n")
            lines += len(complete)
        if pending:
            out.write(pending + "\n")
            lines += 1
        return {"lines_in": lines, "lines_out": lines, "tags": {"end": lines}, "outputs": {"out": lines}}


def load_pipeline(raw: dict[str, Any] | None, *, trace: bool = False) -> Pipeline:
    return Pipeline(raw, trace)
