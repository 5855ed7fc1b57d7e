"""A source's files through real sinks: a new version replaces the previous one's rows in
PostgreSQL and its object in SeaweedFS (same uid, same key), and `kill -9` mid-COPY or
mid-multipart-upload, then a restart, leaves each version's rows and objects exactly once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Queue, wait_until
from tests.daemon.sources_helpers import sources_config, wait_version
from tests.sinks.servers import PG_PASSWORD, Database, SeaweedS3

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]


def _records(tag: str, n: int) -> str:
    return "".join(json.dumps({"n": i, "msg": f"{tag} {i}"}) + "\n" for i in range(1, n + 1))


def test_a_source_version_replaces_its_rows_and_survives_kill_9_mid_copy(
    queue: Queue, start_daemon: Start, postgres: Database, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.log").write_text(_records("v1", 5))
    url = "postgresql://folderd:${PGPW}@127.0.0.1:${PGPORT}/${PGDB}"
    sink = {"type": "sql", "url": url, "table": "records", "columns": {"n": "integer",
            "msg": "text"}, "timeout_s": 3}  # fmt: skip
    cfg = sources_config(tmp_path / "c.json", [{"name": "pg", "path": str(src)}],
                         outputs={"end": {"sink": sink}})  # fmt: skip
    env = {"PGPW": PG_PASSWORD, "PGPORT": str(postgres.port), "PGDB": postgres.name}
    d = start_daemon("--config", str(cfg), env=env)
    wait_version(queue, "pg", "small.log", 1)
    (src / "small.log").write_text(_records("v2", 3))  # fewer rows: the old ones must go
    wait_version(queue, "pg", "small.log", 2)
    rows = postgres.query("SELECT msg FROM records ORDER BY n")
    assert rows == [("v2 1",), ("v2 2",), ("v2 3",)]

    (src / "big.log").write_text(_records("big", 300_000))
    copying = (
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%'"
        " AND state = 'active' AND datname = current_database()"
    )
    wait_until(lambda: postgres.query(copying)[0][0] > 0, 60, "the big file's COPY in flight")
    d.kill()
    start_daemon("--config", str(cfg), env=env)
    s = wait_version(queue, "pg", "big.log", 1, timeout=120)
    assert s["status"] == "processed"
    got = postgres.query("SELECT count(*), count(DISTINCT line), count(DISTINCT uid) FROM records "
                         "WHERE source = 'sources/pg/big.log'")  # fmt: skip
    assert got == [(300_000, 300_000, 1)]


@pytest.mark.serial  # catches a window: the upload in flight, seen by polling the server
def test_a_source_mirrored_to_s3_replaces_its_object_and_survives_kill_9_mid_upload(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "desk"
    (src / "photos").mkdir(parents=True)
    (src / "photos" / "a.jpg").write_bytes(b"first version")
    s3 = {"type": "s3", "bucket": bucket, "endpoint_url": s3_server.url, "prefix": "desk/",
          "request_checksum_calculation": "when_required"}  # fmt: skip
    source = {"name": "desk", "path": str(src), "routes": [{"start": "end", "reader":
              {"type": "none"}}], "deliver": [s3]}  # fmt: skip
    cfg = sources_config(tmp_path / "c.json", [source], outputs={})
    d = start_daemon("--config", str(cfg), env=s3_server.env)
    wait_version(queue, "desk", "photos/a.jpg", 1)
    (src / "photos" / "a.jpg").write_bytes(b"second version, longer")
    wait_version(queue, "desk", "photos/a.jpg", 2)
    objects = s3_server.objects(bucket)
    assert list(objects) == ["desk/photos/a.jpg"]
    body = s3_server.client().get_object(Bucket=bucket, Key="desk/photos/a.jpg")["Body"].read()
    assert body == b"second version, longer"

    big = b"y" * (120 << 20)  # 15 parts: long enough a window (40 MiB took 0.9 s, missed
    # under load by a poll that lists the uploads every 0.2 s at best)
    (src / "big.bin").write_bytes(big)
    wait_until(lambda: s3_server.unfinished(bucket), 60, "a multipart upload in flight")
    d.kill()
    start_daemon("--config", str(cfg), env=s3_server.env)
    wait_version(queue, "desk", "big.bin", 1, timeout=120)
    objects = s3_server.objects(bucket)
    assert sorted(objects) == ["desk/big.bin", "desk/photos/a.jpg"]
    assert objects["desk/big.bin"]["Metadata"]["sha256"] == hashlib.sha256(big).hexdigest()
    assert s3_server.unfinished(bucket) == []
