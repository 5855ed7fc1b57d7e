"""The contract between the engine, its processors and the daemon."""

from __future__ import annotations


class ProcessorError(Exception):
    """A permanent failure of one file: the daemon moves it to failed/ at once.

    Carries where it happened, for the file's summary and the dashboard.
    """

    def __init__(
        self,
        message: str,
        *,
        processor: str | None = None,
        tag: str | None = None,
        line: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.processor = processor
        self.tag = tag
        self.line = line
        self.error_type = error_type or type(self).__name__

    def to_dict(self) -> dict[str, object]:
        return {
            "type": self.error_type,
            "message": self.message,
            "processor": self.processor,
            "tag": self.tag,
            "line": self.line,
        }
