"""Objects into S3-compatible storage (boto3).

An upload is one PUT up to `PART` bytes (the file read once: hashed if need be,
checksummed and sent from memory), a multipart upload of `PART`-sized parts above, each
request with a checksum of its bytes that the server checks, and the object's sha256 in
its metadata. The checksum is a CRC32 (`request_checksum_calculation: when_supported`, the
default), which the server's answer must name back, or a Content-MD5 (`when_required`, for
servers that refuse the CRC headers: every S3 server checks an MD5, at a hash pass of its
own). The answers are the check that the object landed: no HEAD follows. A server that
answers a CRC32 request without its checksum did not check it: that upload is sent again
with a Content-MD5 on each request, and so is every one after it to that sink. Parts go
`PARALLEL` at a time, so memory stays at a few parts. A multipart upload is noted on local
disk while it may be unfinished (`sinks.unfinished`): the next upload of a key left noted
(its worker killed) aborts the key's unfinished uploads first; no other upload looks for
them. An object is replaced by key, so a re-run never makes a second copy; with
`skip_existing` an object already holding the same sha256 is not sent again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from config.sinks import S3SinkConfig, redact, redact_url
from sinks.base import Delivery
from sinks.deadline import WATCHDOG, Alarm, Sockets
from sinks.errors import SinkDataError, SinkError, SinkUnavailable
from sinks.unfinished import Unfinished

PART = 8 << 20  # multipart above this size, in parts of this size
PARALLEL = 8  # parts of one upload in flight at once
_RETRY_CODES = {"BadDigest", "IncompleteBody", "RequestTimeout"}  # the bytes, this time
# the server will not store an object under this key: the file cannot go there
_KEY_CODES = {"KeyTooLongError", "XMinioInvalidObjectName", "InvalidObjectName"}


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class _Unchecked(Exception):
    """The server answered a CRC32 request without its checksum: it did not check it."""


class _Mismatch(Exception):
    """The server answered with a checksum other than the one sent."""


class _Cut(Exception):
    """A request ran past `timeout_s`: the watchdog cut its connection."""


class _Call:
    """One API call in one thread: each of its attempts (botocore retries) gets its own
    deadline, armed when the attempt is sent, which cuts the sockets it uses."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sockets = Sockets()
        self.alarm: Alarm | None = None
        self.fired = False

    def attempt(self) -> None:
        self.end()
        self.sockets.forget()
        self.alarm = WATCHDOG.arm(self.seconds, self.sockets.cut)

    def end(self) -> None:
        if self.alarm is not None:
            WATCHDOG.cancel(self.alarm)
            self.fired = self.fired or self.alarm.fired
            self.alarm = None


class S3Target:
    """One sink's S3 client, made on first use and kept across files."""

    def __init__(self, config: S3SinkConfig) -> None:
        self.config = config
        self._client: Any = None
        self._md5 = config.request_checksum_calculation == "when_required"
        self._current = threading.local()  # .call: this thread's `_Call`, or None

    def _call(self, operation: str, **kw: Any) -> dict[str, Any]:
        """The client's `operation`, each attempt within `timeout_s` in all (`_Cut` when
        one ran past it: its connection was cut, and botocore does not retry it)."""
        call = _Call(self.config.timeout_s)
        self._current.call = call
        try:
            with call.sockets.watching():
                result: dict[str, Any] = getattr(self.client(), operation)(**kw)
                return result
        except Exception:
            call.end()
            if call.fired:
                raise _Cut from None
            raise
        finally:
            call.end()
            self._current.call = None

    def _attempt(self, **_: Any) -> None:
        """botocore's `before-send`: an attempt of this thread's call starts now."""
        call = getattr(self._current, "call", None)
        if call is not None:
            call.attempt()

    def _retry_after_cut(self, **_: Any) -> bool | None:
        """botocore's `needs-retry`: False (no retry) when the watchdog cut the attempt."""
        call = getattr(self._current, "call", None)
        if call is not None and call.alarm is not None and call.alarm.fired:
            return False
        return None

    def _checked(self, operation: str, data: bytes, **kw: Any) -> dict[str, Any]:
        """`operation` (a PUT of `data`: an object or a part) with the checksum the server
        checks; `_Unchecked` if it answered a CRC32 without it, `_Mismatch` if with
        another."""
        if self._md5:  # a server that does not check it answers BadDigest, not 200
            return self._call(operation, Body=data, ContentMD5=_md5(data), **kw)
        crc = _crc32(data)
        done = self._call(operation, Body=data, ChecksumCRC32=crc, **kw)
        if "ChecksumCRC32" not in done:
            self._md5 = True  # a server that ignores flexible checksums: MD5s from now on
            raise _Unchecked
        if done["ChecksumCRC32"] != crc:
            raise _Mismatch(f"sent CRC32 {crc}, the server has {done['ChecksumCRC32']}")
        return done

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def client(self) -> Any:
        """The boto3 client, made on first use (its `meta.events` take hooks)."""
        if self._client is None:
            import boto3  # imported where used: a worker without an S3 sink never pays
            from botocore.config import Config

            cfg = self.config
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=cfg.endpoint_url,
                region_name=cfg.region,
                config=Config(
                    # the watchdog cuts a stalled attempt at timeout_s (not retried); the
                    # sockets' own timeouts only back it up: equal, either could fire first
                    # and a stall would be retried past the deadline
                    connect_timeout=cfg.timeout_s * 2,
                    read_timeout=cfg.timeout_s * 2,
                    retries={"max_attempts": 3, "mode": "standard"},
                    request_checksum_calculation=cfg.request_checksum_calculation,
                    response_checksum_validation=cfg.response_checksum_validation,
                ),
            )
            events = self._client.meta.events
            events.register("before-send.s3", self._attempt)
            events.register_first("needs-retry.s3", self._retry_after_cut)
        return self._client

    def _error(self, exc: BaseException, key: str, doing: str) -> SinkError:
        from botocore.exceptions import ClientError

        cfg = self.config
        if isinstance(exc, _Cut):
            text = f"no complete answer within {cfg.timeout_s:g} s (timeout_s)"
        else:
            text = redact(str(exc).strip() or type(exc).__name__, cfg.secrets())
        where = f" at {redact_url(cfg.endpoint_url)}" if cfg.endpoint_url else ""
        message = f"s3 s3://{cfg.bucket}/{key}{where}: {doing}: {text}"
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
        if code in _RETRY_CODES:
            return SinkError(cfg.name, message)  # transient: this file, this time
        if code in _KEY_CODES:
            return SinkDataError(cfg.name, f"{message} (the server takes no object of this "
                                 "name: see the manual's S3 keys)", None)  # fmt: skip
        self.close()
        return SinkUnavailable(cfg.name, message)

    def put(
        self,
        path: str,
        key: str,
        sha256: str | None,
        metadata: dict[str, str],
        notes: Unfinished | None = None,
    ) -> Delivery:
        """Upload the file at `path` as `key` (replacing it), each request checked by the
        server; `sha256` is its content's digest (None: hashed here, in the read that sends
        it up to `PART`), stored as metadata and compared by `skip_existing`; `metadata`'s
        `uid` names the input. `notes` says which keys may have an unfinished multipart
        upload to abort first (without it, every key's are listed)."""
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        cfg = self.config
        size = os.path.getsize(path)
        body = None
        if size <= PART:  # one read: hashed, checksummed and sent from memory
            with open(path, "rb") as f:
                body = f.read(size + 1)
            if len(body) != size:
                raise self._changed(key, size, len(body))
        if sha256 is None:
            sha256 = sha256_of(path) if body is None else hashlib.sha256(body).hexdigest()
        extra: dict[str, Any] = {"Metadata": {**metadata, "sha256": sha256}}
        if cfg.storage_class:
            extra["StorageClass"] = cfg.storage_class
        doing = "checking what is there"
        try:
            if cfg.skip_existing:
                there = self._head(key)
                if there is not None and there.get("Metadata", {}).get("sha256") == sha256:
                    return self._delivery(key, started, there["ContentLength"],
                                          there.get("ETag", ""), sha256, already=True)  # fmt: skip
            if notes is None or notes.may_have(key):
                doing = "aborting unfinished uploads"
                self._abort_unfinished(key)
                if notes is not None:
                    notes.cleared(key)
            doing = "uploading"
            try:
                sent, etag = self._upload(path, body, key, extra, notes)
            except _Unchecked:  # sent again, all of it, each request with a Content-MD5
                sent, etag = self._upload(path, body, key, extra, notes)
        except (BotoCoreError, ClientError, _Cut) as exc:
            raise self._error(exc, key, doing) from None
        except _Mismatch as exc:
            raise SinkError(cfg.name, f"s3://{cfg.bucket}/{key}: verification failed: "
                            f"{exc}") from None  # fmt: skip
        if sent != size:  # the object holds what was sent, but not what was hashed
            raise self._changed(key, size, sent)
        return self._delivery(key, started, sent, etag, sha256)

    def _changed(self, key: str, size: int, sent: int) -> SinkError:
        """The file changed while it was sent (transient: the next attempt sends it whole)."""
        return SinkError(self.config.name, f"s3://{self.config.bucket}/{key}: the file "
                         f"changed while it was sent ({size} bytes, then {sent})")  # fmt: skip

    def _delivery(
        self, key: str, started: float, size: int, etag: str, sha256: str, already: bool = False
    ) -> Delivery:
        return Delivery(
            self.config.name,
            "s3",
            f"s3://{self.config.bucket}/{key}",
            round(time.monotonic() - started, 6),
            bytes=size,
            etag=etag.strip('"'),
            sha256=sha256,
            checked_by=None if already else "content-md5" if self._md5 else "crc32",
            already_delivered=already,
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._call("head_object", Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _abort_unfinished(self, key: str) -> None:
        """Abort the multipart uploads a dead attempt left for `key` (they hold storage and
        would never complete)."""
        bucket = self.config.bucket
        listing = self._call("list_multipart_uploads", Bucket=bucket, Prefix=key)
        for upload in listing.get("Uploads") or []:
            if upload["Key"] == key:
                self._call("abort_multipart_upload", Bucket=bucket, Key=key,
                           UploadId=upload["UploadId"])  # fmt: skip

    def _upload(
        self, path: str, body: bytes | None, key: str, extra: dict[str, Any],
        notes: Unfinished | None,
    ) -> tuple[int, str]:  # fmt: skip
        """(bytes sent, the object's ETag)."""
        if body is None:
            return self._multipart(path, key, extra, notes)
        done = self._checked("put_object", body, Bucket=self.config.bucket, Key=key, **extra)
        return len(body), done["ETag"]

    def _multipart(
        self, path: str, key: str, extra: dict[str, Any], notes: Unfinished | None
    ) -> tuple[int, str]:
        """The parts sent `PARALLEL` at a time (a botocore client is thread-safe), read one
        by one: memory holds at most `PARALLEL` + 1 parts. A note (`sinks.unfinished`) stands
        for the upload until it is completed or aborted."""
        bucket = self.config.bucket
        crc = {} if self._md5 else {"ChecksumAlgorithm": "CRC32"}  # as boto3's upload_file
        note = notes.started(key) if notes is not None else None
        created = self._call("create_multipart_upload", Bucket=bucket, Key=key, **crc, **extra)
        upload = created["UploadId"]

        def send(number: int, data: bytes) -> dict[str, Any]:
            done = self._checked("upload_part", data, Bucket=bucket, Key=key, UploadId=upload,
                                 PartNumber=number)  # fmt: skip
            part = {"PartNumber": number, "ETag": done["ETag"]}
            if "ChecksumCRC32" in done:  # completing names each part's checksum, if any
                part["ChecksumCRC32"] = done["ChecksumCRC32"]
            return part

        sent = 0
        try:
            parts: list[dict[str, Any]] = []
            with ThreadPoolExecutor(PARALLEL) as pool, open(path, "rb") as f:
                sending: set[Future[dict[str, Any]]] = set()
                number = 0
                while data := f.read(PART):
                    number += 1
                    sent += len(data)
                    sending.add(pool.submit(send, number, data))
                    if len(sending) >= PARALLEL:
                        done, sending = wait(sending, return_when=FIRST_COMPLETED)
                        parts += [d.result() for d in done]  # a failed part raises here
                parts += [d.result() for d in sending]
            parts.sort(key=lambda p: p["PartNumber"])
            completed = self._call("complete_multipart_upload", Bucket=bucket, Key=key,
                                   UploadId=upload, MultipartUpload={"Parts": parts})  # fmt: skip
        except BaseException:
            with contextlib.suppress(Exception):  # if this fails, the note stays: the next
                self._call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload)
                if notes is not None and note is not None:  # upload of the key aborts it
                    notes.ended(note)
            raise
        if notes is not None and note is not None:
            notes.ended(note)
        return sent, completed["ETag"]
