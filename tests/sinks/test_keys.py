"""S3 object keys: any name a filesystem allows has its own key, which the servers keep as
sent and which maps back to the name — checked by property over names of arbitrary bytes,
by itself and against a real SeaweedFS (which reads `\\` as `/`, collapses `//`, refuses
`.` and `..` parts)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.sinks import S3SinkConfig, parse_sink
from daemon.faults import Fault, classify
from sinks import SinkDataError, Targets
from sinks.keys import MAX_KEY_BYTES, encoded, name_of, object_key
from sinks.s3 import sha256_of
from tests.sinks.servers import SeaweedS3

# bytes servers treat specially, and their neighbours, drawn more often than chance would
_TRICKY = [b"\\", b"%", b"%2F", b"%25", b".", b"..", b" ", b"\xff", b"\xc3", b"\xc3\xa9",
           b"\n", b"\r", b"\t", b"\x7f", b"\xc2\x85", b"\xef\xbf\xbe", b"~", b"#", b"+",
           b"?", b"&", b"{", b"}", b"[", b"]", b"^", b"`", b"|", b"<", b">", b'"']  # fmt: skip
_part = st.lists(
    st.one_of(st.sampled_from(_TRICKY), st.binary(min_size=1, max_size=4)), min_size=1, max_size=6
).map(lambda chunks: b"".join(chunks).replace(b"/", b"_").replace(b"\x00", b"_")[:60])
_name = (
    st.lists(_part.filter(lambda p: p not in (b".", b"..")), min_size=1, max_size=3)
    .map(b"/".join)
    .map(os.fsdecode)
)


@given(st.lists(_name, min_size=2, max_size=30, unique=True))
def test_names_map_to_distinct_keys_that_map_back(names: list[str]) -> None:
    keys = [encoded(n) for n in names]
    assert len(set(keys)) == len(names)
    for name, key in zip(names, keys, strict=True):
        assert name_of(key) == name
        key.encode()  # UTF-8, whatever the name's bytes
        assert "\\" not in key and "//" not in key and not key.startswith("/")
        parts = key.split("/")
        assert all(p and p.strip(" ") not in (".", "..") for p in parts), key
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in key), key


def test_an_ordinary_name_is_its_own_key() -> None:
    for name in ("app.log", "web01/2026-11-22 app (2).log", "été/数据.csv", ".hidden", "a..b"):
        assert encoded(name) == name


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("back\\slash.log", "back%5Cslash.log"),
        ("100%.log", "100%25.log"),
        (os.fsdecode(b"bad\xff.log"), "bad%FF.log"),
        ("a\nb", "a%0Ab"),
        (" ../x", " %2E%2E/x"),
    ],
)
def test_what_servers_treat_specially_is_percent_encoded(name: str, key: str) -> None:
    assert encoded(name) == key and name_of(key) == name


def test_a_group_in_the_prefix_is_one_part_and_a_missing_or_empty_one_fails_the_file() -> None:
    assert object_key("d", "{host}/", {"host": "a/b"}, "x.log") == "a%2Fb/x.log"
    assert object_key("d", "{host}/", {"host": ".."}, "x.log") == "%2E%2E/x.log"
    with pytest.raises(SinkDataError, match="did not capture"):
        object_key("d", "{host}/", {}, "x.log")
    with pytest.raises(SinkDataError, match="is empty"):
        object_key("d", "{host}/", {"host": ""}, "x.log")
    with pytest.raises(SinkDataError, match=f"over S3's {MAX_KEY_BYTES}"):
        object_key("d", "", {}, "/".join([os.fsdecode(b"\xff" * 200)] * 2))


@pytest.mark.parametrize(
    ("prefix", "why"),
    [
        ("/mirror/", "a leading '/'"),
        ("a//b/", "a '//'"),
        ("back\\slash/", "a backslash"),
        ("a/../b/", "a '.' or '..' part"),
        ("logs-{host}", "must end with '/'"),
    ],
)
def test_a_prefix_the_servers_would_rewrite_is_a_config_error(prefix: str, why: str) -> None:
    raw = {"type": "s3", "bucket": "inputs", "prefix": prefix}
    sink, errors = parse_sink(raw, "$.deliver[0]", "deliver[0]", {})
    assert sink is None and errors[0].key == "$.deliver[0].prefix"
    assert why in errors[0].message


@pytest.fixture
def mirror(s3_server: SeaweedS3, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    yield bucket


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(_name, min_size=2, max_size=6, unique=True))
def test_against_seaweedfs_no_two_names_share_an_object_and_each_key_maps_back(
    names: list[str], s3_server: SeaweedS3, mirror: str, tmp_path: Path
) -> None:
    """As the daemon delivers each input (`deliver` with a prefix): one object per name,
    each holding its own input's bytes and uid, under a key that decodes to its name."""
    prefix = f"{uuid.uuid4().hex[:8]}/"
    sink = S3SinkConfig(mirror, prefix=prefix, endpoint_url=s3_server.url, name="deliver[0]")
    targets = Targets()
    uids = {}
    try:
        for i, name in enumerate(names):
            path = tmp_path / f"in{i}"
            path.write_bytes(os.fsencode(name) + b"\n")
            uids[name] = uuid.uuid4().hex
            key = object_key(sink.name, sink.prefix, {}, name)
            targets.put(sink, str(path), key, sha256_of(str(path)), {"uid": uids[name]})
    finally:
        targets.close()
    s3 = s3_server.client()
    keys = [k for k in s3_server.objects(mirror) if k.startswith(prefix)]
    assert len(keys) == len(names), "no two names share an object"
    assert sorted(name_of(k.removeprefix(prefix)) for k in keys) == sorted(names)
    for key in keys:
        name = name_of(key.removeprefix(prefix))
        got = s3.get_object(Bucket=mirror, Key=key)
        assert got["Metadata"]["uid"] == uids[name]
        assert got["Body"].read() == os.fsencode(name) + b"\n"


def test_back_slash_and_slash_are_two_objects_and_both_claims_stay_true(
    s3_server: SeaweedS3, mirror: str, tmp_path: Path
) -> None:
    """The issue's case: `back\\slash.log` then `back/slash.log`, mirrored under `mirror/`."""
    sink = S3SinkConfig(mirror, prefix="mirror/", endpoint_url=s3_server.url, name="deliver[0]")
    targets = Targets()
    done = {}
    for name, uid in (("back\\slash.log", "u1"), ("back/slash.log", "u2")):
        path = tmp_path / uid
        path.write_text(f"{name}\n")
        key = object_key(sink.name, sink.prefix, {}, name)
        done[name] = targets.put(sink, str(path), key, sha256_of(str(path)), {"uid": uid})
    targets.close()
    objects = s3_server.objects(mirror)
    assert sorted(objects) == ["mirror/back%5Cslash.log", "mirror/back/slash.log"]
    for name, delivery in done.items():
        key = delivery.location.removeprefix(f"s3://{mirror}/")
        assert objects[key]["Metadata"]["sha256"] == delivery.sha256, f"{name}'s claim holds"


def test_a_key_part_the_server_will_not_store_fails_the_file(
    s3_server: SeaweedS3, mirror: str, tmp_path: Path
) -> None:
    """SeaweedFS (like MinIO) keeps each part of a key as a file name: past 255 bytes it
    refuses it (`KeyTooLongError`). A name of 100 backslashes is 300 bytes encoded: that
    file cannot be delivered there, which is its failure (not the sink's: no pause)."""
    sink = S3SinkConfig(mirror, endpoint_url=s3_server.url, name="deliver[0]")
    path = tmp_path / "f"
    path.write_text("x\n")
    key = object_key(sink.name, sink.prefix, {}, "\\" * 100 + ".log")
    targets = Targets()
    try:
        with pytest.raises(SinkDataError, match="KeyTooLongError") as err:
            targets.put(sink, str(path), key, sha256_of(str(path)), {"uid": "u1"})
    finally:
        targets.close()
    assert "takes no object of this name" in str(err.value)
    assert classify(err.value) is Fault.TRANSIENT  # not environment: the worker fails it
