"""Objects into a real SeaweedFS: one PUT or a multipart upload, each request checked by the
server (bytes damaged on the way are refused, an answer naming another checksum is no
delivery), the sha256 and uid in the metadata; skip_existing; the unfinished upload a
killed attempt noted aborted first; a server that refuses, is gone, or drips or stalls
past `timeout_s` is `SinkUnavailable`."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.sinks import S3SinkConfig
from daemon.faults import Fault, classify
from sinks import SinkError, SinkUnavailable, Targets
from sinks.s3 import PART, S3Target
from sinks.unfinished import Unfinished
from tests.hostile_servers import Hostile
from tests.sinks.servers import S3_SECRET, SeaweedS3


@pytest.fixture
def targets(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    for k, v in s3_server.env.items():  # the standard AWS chain reads the environment
        monkeypatch.setenv(k, v)
    t = Targets()
    yield t
    t.close()


def _sink(server: SeaweedS3, bucket: str, **kw: object) -> S3SinkConfig:
    return S3SinkConfig(bucket, endpoint_url=server.url, name="deliver[0]", **kw)


def _file(tmp_path: Path, size: int) -> tuple[str, str]:
    path = tmp_path / f"f{size}"
    data = os.urandom(size)
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, 1000, 2 * PART + 123])
@pytest.mark.parametrize(
    ("when", "checked_by"), [("when_supported", "crc32"), ("when_required", "content-md5")]
)
def test_an_upload_is_verified_and_carries_its_sha256(
    tmp_path: Path,
    targets: Targets,
    s3_server: SeaweedS3,
    bucket: str,
    size: int,
    when: str,
    checked_by: str,
) -> None:
    path, sha = _file(tmp_path, size)
    sink = _sink(s3_server, bucket, request_checksum_calculation=when)
    d = targets.put(sink, path, "in/a.log", sha, {"uid": "u1"})
    assert (d.bytes, d.sha256, d.already_delivered) == (size, sha, False)
    assert d.checked_by == checked_by
    head = s3_server.objects(bucket)["in/a.log"]
    assert head["ContentLength"] == size
    assert head["Metadata"] == {"sha256": sha, "uid": "u1"}
    assert d.etag == head["ETag"].strip('"')
    if size > PART:
        assert d.etag.endswith("-3")  # three parts
    got = s3_server.client().get_object(Bucket=bucket, Key="in/a.log")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


def test_a_server_that_does_not_take_the_crc32_gets_a_content_md5_instead(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that ignores flexible checksums answers without one (simulated here by
    dropping it from SeaweedFS's answers): what it was sent goes again with a Content-MD5,
    and so does everything after it."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    target = S3Target(_sink(s3_server, bucket))
    client = target.client()
    sent: list[tuple[str, str]] = []

    def unchecked(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("ChecksumCRC32", None)

    def note(request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rpartition(".")[2]  # before-send.s3.<operation>
        if operation in ("PutObject", "UploadPart"):
            sent.append((operation, "md5" if "Content-MD5" in request.headers else "crc32"))

    client.meta.events.register("after-call.s3", unchecked)
    client.meta.events.register("before-send.s3", note)
    try:
        path, sha = _file(tmp_path, 2 * PART + 1)
        assert target.put(path, "big", sha, {}).checked_by == "content-md5"
        small, small_sha = _file(tmp_path, 10)
        assert target.put(small, "small", small_sha, {}).checked_by == "content-md5"
    finally:
        target.close()
    assert sent[:1] == [("UploadPart", "crc32")] and sent[-1] == ("PutObject", "md5")
    assert sent.count(("UploadPart", "md5")) == 3, "each part sent with an MD5 at last"
    got = s3_server.client().get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


def test_skip_existing_skips_the_same_bytes_and_replaces_others(
    tmp_path: Path, targets: Targets, s3_server: SeaweedS3, bucket: str
) -> None:
    sink = _sink(s3_server, bucket, skip_existing=True)
    path, sha = _file(tmp_path, 100)
    assert not targets.put(sink, path, "k", sha, {}).already_delivered
    assert targets.put(sink, path, "k", sha, {}).already_delivered
    other, other_sha = _file(tmp_path, 200)
    assert not targets.put(sink, other, "k", other_sha, {}).already_delivered
    assert s3_server.objects(bucket)["k"]["ContentLength"] == 200


def test_an_unfinished_multipart_upload_of_the_key_is_aborted_first(
    tmp_path: Path, targets: Targets, s3_server: SeaweedS3, bucket: str
) -> None:
    s3 = s3_server.client()
    s3.create_multipart_upload(Bucket=bucket, Key="big")  # what a killed attempt leaves
    s3.create_multipart_upload(Bucket=bucket, Key="big2")  # another key's: left alone
    path, sha = _file(tmp_path, PART + 1)
    targets.put(_sink(s3_server, bucket), path, "big", sha, {})
    assert [u["Key"] for u in s3_server.unfinished(bucket)] == ["big2"]


def test_refused_credentials_and_a_missing_bucket_are_unavailable(
    tmp_path: Path,
    targets: Targets,
    s3_server: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, sha = _file(tmp_path, 10)
    with pytest.raises(SinkUnavailable, match="deliver"):
        targets.put(_sink(s3_server, "no-such-bucket"), path, "k", sha, {})
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(SinkUnavailable) as err:
        Targets().put(_sink(s3_server, bucket, timeout_s=3), path, "k", sha, {})
    assert classify(err.value) is Fault.ENVIRONMENT
    assert S3_SECRET not in str(err.value) and "not-the-secret" not in str(err.value)


def test_a_server_that_is_gone_is_unavailable(tmp_path: Path, targets: Targets) -> None:
    sink = S3SinkConfig(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        name="outputs.parsed",
        timeout_s=1,
    )
    path, sha = _file(tmp_path, 10)
    with pytest.raises(SinkUnavailable, match=r"outputs\.parsed: s3 s3://bucket/k at http"):
        targets.put(sink, path, "k", sha, {})


def _closed_port() -> int:
    from tests.sinks.servers import free_port

    return free_port()


def _sent(target: S3Target) -> list[str]:
    """The operations `target` sends from now on (each attempt), in order."""
    sent: list[str] = []

    def note(event_name: str, **_: Any) -> None:
        sent.append(event_name.rpartition(".")[2])  # before-send.s3.<operation>

    target.client().meta.events.register("before-send.s3", note)
    return sent


def test_an_upload_sends_its_own_requests_and_nothing_else(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No listing of unfinished uploads before it, no HEAD after it: a small file is one
    PUT, a large one its multipart upload, each checked by the server's answer; the note a
    multipart upload writes is gone once it is completed."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    notes = Unfinished(tmp_path / "notes", s3_server.url, bucket)
    target = S3Target(_sink(s3_server, bucket))
    sent = _sent(target)
    try:
        small, small_sha = _file(tmp_path, 10)
        big, big_sha = _file(tmp_path, 2 * PART + 1)
        assert target.put(small, "small", small_sha, {}, notes).bytes == 10
        assert target.put(big, "big", big_sha, {}, notes).bytes == 2 * PART + 1
    finally:
        target.close()
    assert sent[:2] + sent[-1:] == ["PutObject", "CreateMultipartUpload",
                                    "CompleteMultipartUpload"]  # fmt: skip
    assert sorted(sent[2:-1]) == ["UploadPart"] * 3
    assert list((tmp_path / "notes").iterdir()) == []
    got = s3_server.client().get_object(Bucket=bucket, Key="big")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == big_sha


def test_a_key_a_killed_multipart_upload_noted_has_its_unfinished_upload_aborted_first(
    tmp_path: Path, targets: Targets, s3_server: SeaweedS3, bucket: str
) -> None:
    """What a worker killed mid-upload leaves, its note and its upload, is cleared by the
    next upload of the key, though the file is small now (one PUT); another key's upload,
    noted by nobody, is not looked for."""
    s3 = s3_server.client()
    Unfinished(tmp_path / "notes", s3_server.url, bucket).started("big")
    s3.create_multipart_upload(Bucket=bucket, Key="big")
    s3.create_multipart_upload(Bucket=bucket, Key="big2")
    path, sha = _file(tmp_path, 100)
    targets.put(_sink(s3_server, bucket), path, "big", sha, {}, tmp_path / "notes")
    assert [u["Key"] for u in s3_server.unfinished(bucket)] == ["big2"]
    assert list((tmp_path / "notes").iterdir()) == []
    assert s3_server.objects(bucket)["big"]["ContentLength"] == 100


@pytest.mark.parametrize("size", [100, 2 * PART + 1])
@pytest.mark.parametrize("damage", ["flipped", "truncated"])
@pytest.mark.parametrize("when", ["when_supported", "when_required"])
def test_bytes_damaged_on_the_way_are_refused_and_no_delivery(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch,
    size: int, damage: str, when: str,
) -> None:  # fmt: skip
    """A byte flipped, or the body cut short (its Content-Length with it), after its
    checksum was taken: the server finds another CRC32 (or MD5) and refuses it; the attempt
    is retried (a transient error) and nothing lands. The next attempt delivers."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    path, sha = _file(tmp_path, size)
    target = S3Target(_sink(s3_server, bucket, request_checksum_calculation=when))

    def spoil(request: Any, event_name: str, **_: Any) -> None:
        if not event_name.endswith(("PutObject", "UploadPart")):
            return
        body = request.body.read() if hasattr(request.body, "read") else request.body
        body = body[:-7] if damage == "truncated" else bytes([body[0] ^ 1]) + body[1:]
        request.body = io.BytesIO(body)
        request.headers["Content-Length"] = str(len(body))

    target.client().meta.events.register("before-send.s3", spoil)
    try:
        with pytest.raises(SinkError, match=r"uploading: .*(BadDigest|XAmzContentChecksum|"
                           r"InvalidDigest|checksum)") as err:  # fmt: skip
            target.put(path, "k", sha, {"uid": "u1"})
        assert classify(err.value) is Fault.TRANSIENT, "retried: the next attempt sends it again"
        assert s3_server.objects(bucket) == {}
        assert s3_server.unfinished(bucket) == []
        target.client().meta.events.unregister("before-send.s3", spoil)
        assert target.put(path, "k", sha, {"uid": "u1"}).bytes == size
    finally:
        target.close()
    got = s3_server.client().get_object(Bucket=bucket, Key="k")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha


def test_an_answer_naming_another_checksum_is_no_delivery(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answers that it stored bytes of another CRC32 than the one sent
    (simulated by changing SeaweedFS's answer): no delivery, the attempt retried."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    path, sha = _file(tmp_path, 100)
    target = S3Target(_sink(s3_server, bucket))

    def other(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChecksumCRC32"] = "AAAAAA=="

    target.client().meta.events.register("after-call.s3.PutObject", other)
    try:
        with pytest.raises(SinkError, match=r"verification failed: sent CRC32 \S+, the server "
                           "has AAAAAA==") as err:  # fmt: skip
            target.put(path, "in/a.log", sha, {"uid": "u1"})
    finally:
        target.close()
    assert classify(err.value) is Fault.TRANSIENT, "retried: the next attempt writes it again"


@pytest.mark.parametrize("mode", ["drip", "drip_head", "silent", "deaf"])
@pytest.mark.serial
def test_a_server_that_drips_or_stalls_is_unavailable_at_the_deadline(
    tmp_path: Path, targets: Targets, mode: str
) -> None:
    """A per-read timeout would wait for a dripping server forever (one byte a second
    never trips it); `timeout_s` is the most each request takes in all."""
    size = 4 << 20 if mode == "deaf" else 10  # deaf: the upload fills the socket buffers
    path, sha = _file(tmp_path, size)
    with Hostile(mode, interval=0.2) as server:
        sink = S3SinkConfig("bucket", endpoint_url=server.url, name="deliver[0]", timeout_s=1)
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match=r"within 1 s \(timeout_s\)") as err:
            targets.put(sink, path, "k", sha, {})
        took = time.monotonic() - started
    # one attempt cut at 1 s, not retried by botocore (and the client made: ~1 s loaded)
    assert took < 5, f"{took:.1f} s"
    assert server.accepted == 1
    assert classify(err.value) is Fault.ENVIRONMENT
    assert str(err.value).startswith(f"deliver[0]: s3 s3://bucket/k at {server.url}: ")


@pytest.mark.serial
def test_a_part_upload_that_stalls_is_cut_and_the_upload_aborted(
    tmp_path: Path, s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the multipart upload is created the endpoint reads 1 KiB a tenth of a second:
    the parts (sent from a pool of threads) crawl on, never idle long enough for a per-read
    timeout until the socket buffers are full; each is cut at `timeout_s`, and the delivery
    is unavailable within a few deadlines (the abort of the upload meets the same
    endpoint)."""
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    path, sha = _file(tmp_path, 2 * PART + 1)
    upstream = ("127.0.0.1", s3_server.ports["s3.port"])
    with Hostile("proxy", upstream=upstream, interval=0.1) as endpoint:
        target = S3Target(S3SinkConfig(bucket, endpoint_url=endpoint.url, name="outputs.x",
                                       timeout_s=2))  # fmt: skip

        def crawl(**_: Any) -> None:
            endpoint.mode = "trickle"
            endpoint.hang_up()

        target.client().meta.events.register("after-call.s3.CreateMultipartUpload", crawl)
        started = time.monotonic()
        try:
            with pytest.raises(SinkUnavailable, match=r"uploading: no complete answer within 2"):
                target.put(path, "big", sha, {"uid": "u1"})
        finally:
            target.close()
        took = time.monotonic() - started
    # each part cut at 2 s (a part that met the hung-up connection first is retried by
    # botocore, then cut), the abort cut at 2 s: bounded, on a loaded machine too
    assert took < 20, f"{took:.1f} s"
    assert s3_server.objects(bucket) == {}, "no object claimed"
