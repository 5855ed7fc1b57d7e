"""The S3 mirror recipe redone as a source, end to end against a real SeaweedFS, run as
`make recipe-s3-mirror-source` runs it (`main.py --drain` on examples/s3-mirror/
source_config.json): every file of the folder in the bucket once, under its relative path,
with its bytes; the folder untouched; run again, nothing is sent; a changed file is sent
again under the same key."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.daemon.sources_helpers import tree
from tests.sinks.servers import SeaweedS3

pytestmark = pytest.mark.integration

CONFIG = str(ROOT / "examples/s3-mirror/source_config.json")


def _drain(tmp_path: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--drain", "--no-dashboard", "--config", CONFIG,
         "--watch-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "results"),
         "--empty-files", "process", "--log-format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_mirror_as_a_source_sends_each_version_once(
    s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    gen = subprocess.run([sys.executable, str(ROOT / "examples/s3-mirror/generate.py"), "--out",
                          str(folder), "--large-mb", "20"], check=True, capture_output=True,
                         text=True)  # fmt: skip
    want = {rel: sha for sha, rel in (line.split(" ", 1) for line in gen.stdout.splitlines())}
    before = tree(folder)
    env = {"PATH": "/usr/bin:/bin", **s3_server.env, "MIRROR_BUCKET": bucket,
           "S3_ENDPOINT": s3_server.url, "MIRROR_FOLDER": str(folder)}  # fmt: skip
    first = _drain(tmp_path, env)
    assert first.count('"source_version_processed"') == len(want)
    objects = s3_server.objects(bucket)
    assert sorted(objects) == sorted(want)
    for rel, sha in want.items():
        assert objects[rel]["Metadata"]["sha256"] == sha
    assert tree(folder) == before, "the recipe wrote in the folder"

    assert '"source_version_processed"' not in _drain(tmp_path, env)  # nothing changed
    changed = next(r for r in sorted(want) if objects[r]["ContentLength"] > 0)
    (folder / changed).write_bytes(b"a new version\n")
    third = _drain(tmp_path, env)
    assert third.count('"source_version_processed"') == 1
    body = s3_server.client().get_object(Bucket=bucket, Key=changed)["Body"].read()
    assert body == b"a new version\n"
    head = s3_server.client().head_object(Bucket=bucket, Key=changed)
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
