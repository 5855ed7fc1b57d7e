"""A user processor whose module holds a large model from the moment it is imported: it
is imported when a worker builds the pipeline, before any file runs."""

from __future__ import annotations

MODEL = bytearray(300 << 20)  # written (resident) at import


def classify(line: str) -> str:
    return line
