"""Objects into S3-compatible storage (boto3).

Each upload first aborts whatever unfinished multipart upload a dead attempt left for its
key, then sends the file — one PUT up to `PART` bytes, a multipart upload of `PART`-sized
parts above — each request with a checksum of its bytes that the server checks, and the
object's sha256 in its metadata; then a HEAD verifies size and sha256. The checksum is
boto3's CRC32 (`request_checksum_calculation: when_supported`, its default), or a
Content-MD5 (`when_required`, for servers that refuse the CRC headers: every S3 server
checks an MD5, at a hash pass of its own: 700 MB/s here, CRC32 3.7 GB/s). A server that
answers a CRC32 request without its checksum did not check it: that upload is sent again
with a Content-MD5 on each request, and so is every one after it to that sink. Parts go
`PARALLEL` at a time, so memory stays at a few parts. An object is replaced by key, so a
re-run never makes a second copy; with `skip_existing` an object already holding the same
sha256 is not sent again.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from config.sinks import S3SinkConfig, redact, redact_url
from sinks.base import Delivery
from sinks.errors import SinkError, SinkUnavailable

PART = 8 << 20  # multipart above this size, in parts of this size
PARALLEL = 8  # parts of one upload in flight at once
_RETRY_CODES = {"BadDigest", "IncompleteBody", "RequestTimeout"}  # the bytes, this time


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class _Unchecked(Exception):
    """The server answered a CRC32 request without its checksum: it did not check it."""


class S3Target:
    """One sink's S3 client, made on first use and kept across files."""

    def __init__(self, config: S3SinkConfig) -> None:
        self.config = config
        self._client: Any = None
        self._md5 = config.request_checksum_calculation == "when_required"

    def _checked(
        self, call: Callable[..., dict[str, Any]], data: bytes, **kw: Any
    ) -> dict[str, Any]:
        """`call` (a PUT of `data`: an object or a part) with the checksum the server
        checks; `_Unchecked` if it answered a CRC32 without it."""
        if self._md5:
            return call(Body=data, ContentMD5=_md5(data), **kw)
        done = call(Body=data, ChecksumAlgorithm="CRC32", **kw)
        if "ChecksumCRC32" not in done:
            self._md5 = True  # a server that ignores flexible checksums: MD5s from now on
            raise _Unchecked
        return done

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # imported where used: a worker without an S3 sink never pays
            from botocore.config import Config

            cfg = self.config
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=cfg.endpoint_url,
                region_name=cfg.region,
                config=Config(
                    connect_timeout=cfg.timeout_s,
                    read_timeout=cfg.timeout_s,
                    retries={"max_attempts": 3, "mode": "standard"},
                    request_checksum_calculation=cfg.request_checksum_calculation,
                    response_checksum_validation=cfg.response_checksum_validation,
                ),
            )
        return self._client

    def _error(self, exc: BaseException, key: str, doing: str) -> SinkError:
        from botocore.exceptions import ClientError

        cfg = self.config
        text = redact(str(exc).strip() or type(exc).__name__, cfg.secrets())
        where = f" at {redact_url(cfg.endpoint_url)}" if cfg.endpoint_url else ""
        message = f"s3 s3://{cfg.bucket}/{key}{where}: {doing}: {text}"
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
        if code in _RETRY_CODES:
            return SinkError(cfg.name, message)  # transient: this file, this time
        self.close()
        return SinkUnavailable(cfg.name, message)

    def put(self, path: str, key: str, sha256: str, metadata: dict[str, str]) -> Delivery:
        """Upload the file at `path` as `key` (replacing it), verified; `sha256` is its
        content's digest, stored as metadata and compared by `skip_existing`."""
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        cfg = self.config
        size = os.path.getsize(path)
        meta = {**metadata, "sha256": sha256}
        doing = "checking what is there"
        try:
            if cfg.skip_existing:
                there = self._head(key)
                if there is not None and there.get("Metadata", {}).get("sha256") == sha256:
                    return self._delivery(key, started, there, sha256, already=True)
            doing = "aborting unfinished uploads"
            self._abort_unfinished(key)
            doing = "uploading"
            extra: dict[str, Any] = {"Metadata": meta}
            if cfg.storage_class:
                extra["StorageClass"] = cfg.storage_class
            try:
                self._upload(path, size, key, extra)
            except _Unchecked:  # sent again, all of it, each request with a Content-MD5
                self._upload(path, size, key, extra)
            doing = "verifying"
            there = self._head(key)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, key, doing) from None
        if (
            there is None
            or there["ContentLength"] != size
            or (there.get("Metadata", {}).get("sha256") != sha256)
        ):
            got = "no object" if there is None else f"{there['ContentLength']} bytes"
            raise SinkError(
                cfg.name,
                f"s3://{cfg.bucket}/{key}: verification failed: sent "
                f"{size} bytes, the server has {got}",
            )
        return self._delivery(key, started, there, sha256)

    def _delivery(
        self, key: str, started: float, head: dict[str, Any], sha256: str, already: bool = False
    ) -> Delivery:
        return Delivery(
            self.config.name,
            "s3",
            f"s3://{self.config.bucket}/{key}",
            round(time.monotonic() - started, 6),
            bytes=head["ContentLength"],
            etag=head.get("ETag", "").strip('"'),
            sha256=sha256,
            checked_by=None if already else "content-md5" if self._md5 else "crc32",
            already_delivered=already,
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._s3().head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _abort_unfinished(self, key: str) -> None:
        """Abort the multipart uploads a dead attempt left for `key` (they hold storage and
        would never complete)."""
        s3, bucket = self._s3(), self.config.bucket
        listing = s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
        for upload in listing.get("Uploads") or []:
            if upload["Key"] == key:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])

    def _upload(self, path: str, size: int, key: str, extra: dict[str, Any]) -> None:
        if size > PART:
            self._multipart(path, key, extra)
            return
        with open(path, "rb") as f:
            body = f.read()
        self._checked(self._s3().put_object, body, Bucket=self.config.bucket, Key=key, **extra)

    def _multipart(self, path: str, key: str, extra: dict[str, Any]) -> None:
        """The parts sent `PARALLEL` at a time (a botocore client is thread-safe), read one
        by one: memory holds at most `PARALLEL` + 1 parts."""
        s3, bucket = self._s3(), self.config.bucket
        crc = {} if self._md5 else {"ChecksumAlgorithm": "CRC32"}  # as boto3's upload_file
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **crc, **extra)["UploadId"]

        def send(number: int, data: bytes) -> dict[str, Any]:
            done = self._checked(s3.upload_part, data, Bucket=bucket, Key=key, UploadId=upload,
                                 PartNumber=number)  # fmt: skip
            part = {"PartNumber": number, "ETag": done["ETag"]}
            if "ChecksumCRC32" in done:  # completing names each part's checksum, if any
                part["ChecksumCRC32"] = done["ChecksumCRC32"]
            return part

        try:
            parts: list[dict[str, Any]] = []
            with ThreadPoolExecutor(PARALLEL) as pool, open(path, "rb") as f:
                sending: set[Future[dict[str, Any]]] = set()
                number = 0
                while data := f.read(PART):
                    number += 1
                    sending.add(pool.submit(send, number, data))
                    if len(sending) >= PARALLEL:
                        done, sending = wait(sending, return_when=FIRST_COMPLETED)
                        parts += [d.result() for d in done]  # a failed part raises here
                parts += [d.result() for d in sending]
            parts.sort(key=lambda p: p["PartNumber"])
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the next attempt aborts it if this fails
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise
