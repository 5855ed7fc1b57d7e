"""Uploads: a multipart body streamed straight to disk, never held whole in memory.

Each file part is written, chunk by chunk as python-multipart parses the request stream,
to a temp name inside the daemon's hidden upload directory (in unprocessed/, so the final
rename is atomic and on one filesystem; hidden, so it is never claimed half-written). Only
when the whole request arrived does `DaemonAPI.accept_upload` rename each file into
unprocessed/ under its sanitised name. Anything that goes wrong — too large (413), a bad
name (400), the client going away — removes every temp file of the request.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from daemon.control import ActionError

if TYPE_CHECKING:
    from dashboard.context import Dashboard

log = structlog.get_logger(__name__)

FIELDS_MAX = 64 << 10  # non-file form fields, in total
DISCARD_MAX = 32 << 20  # read (and drop) this much of an oversize body, so clients see 413


class UploadError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Receiver:
    """python-multipart callbacks writing file parts to temp files in `directory`."""

    def __init__(self, directory: Path, limit: int, check_name: Callable[[str], str]) -> None:
        self.directory = directory
        self.limit = limit
        self.check_name = check_name
        self.file_bytes = 0
        self.field_bytes = 0
        self.staged: list[tuple[Path, str]] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._out: IO[bytes] | None = None
        self._path: Path | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw = options.get(b"filename")
        if raw is None:
            return  # an ordinary field: counted, not kept
        filename = raw.decode("utf-8", "replace")
        self.check_name(filename)  # fail before writing a byte
        self._path = self.directory / f"{uuid.uuid4().hex}.part"
        self._out = self._path.open("xb")
        self.staged.append((self._path, filename))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._out is None:
            self.field_bytes += n
            if self.field_bytes > FIELDS_MAX:
                raise UploadError("form fields too large", 413)
            return
        self.file_bytes += n
        if self.file_bytes > self.limit:
            raise UploadError(f"upload larger than the limit of {self.limit >> 20} MB", 413)
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        for path, _ in self.staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.staged.clear()


async def receive(request: Request, dash: Dashboard) -> list[dict[str, str]]:
    """Stream the request's files to disk and hand them to the daemon; their final names."""
    limit = dash.max_upload_bytes
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError("send the files as multipart/form-data", 415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + DISCARD_MAX:
        raise UploadError(f"upload larger than the limit of {limit >> 20} MB", 413)
    rx = _Receiver(dash.api.upload_dir, limit, dash.api.upload_name)
    parser = MultipartParser(options[b"boundary"], rx.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in _body(request, limit):
            parser.write(chunk)
        parser.finalize()
        rx._part_end()
        if not rx.staged:
            raise UploadError("no file in the upload (expected a part with a filename)", 400)
        accepted = []
        for path, filename in list(rx.staged):
            final = await run_in_threadpool(dash.api.accept_upload, path, filename)
            rx.staged.remove((path, filename))
            accepted.append({"filename": filename, "path": final})
            log.info("upload_accepted", path=final, filename=filename)
        return accepted
    except UploadError as exc:
        if exc.status == 413:
            await _drain(request, DISCARD_MAX)
        raise
    except ActionError as exc:
        raise UploadError(str(exc), exc.status) from None
    except FormParserError as exc:
        raise UploadError(f"malformed multipart body: {exc}", 400) from None
    except ClientDisconnect:
        log.info("upload_abandoned", bytes=rx.file_bytes)
        raise UploadError("client disconnected", 400) from None
    finally:
        rx.discard()


async def _body(request: Request, limit: int) -> Any:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit + FIELDS_MAX + (1 << 20):  # the files' bytes plus framing
            raise UploadError(f"upload larger than the limit of {limit >> 20} MB", 413)
        if chunk:
            yield chunk


async def _drain(request: Request, cap: int) -> None:
    """Read what is left of an oversize body (up to `cap`) so the client gets its 413."""
    seen = 0
    while seen <= cap:
        message = await request.receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
