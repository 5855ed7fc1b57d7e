"""The S3 mirror recipe end to end against a real SeaweedFS: the generator's tree dropped
into a real daemon running examples/s3-mirror/pipeline_config.json, SIGKILLed while the
large file's multipart upload is in flight, restarted: every file is in the bucket once,
under its relative path, with its bytes (read back), no unfinished upload, and a file
dropped again with the same bytes is skipped, not sent."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, DaemonProcess, Queue, wait_until
from tests.sinks.servers import SeaweedS3

pytestmark = pytest.mark.integration

Start = Callable[..., DaemonProcess]
CONFIG = str(ROOT / "examples/s3-mirror/pipeline_config.json")
LARGE = "backups/site-2026-11-30.tar"


def _generate(out: Path) -> dict[str, str]:
    """Run the recipe's generator as a user would; relative path -> sha256."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples/s3-mirror/generate.py"), "--out", str(out),
         "--large-mb", "64"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return {rel: sha for sha, rel in (line.split(" ", 1) for line in done.stdout.splitlines())}


def test_sigkill_mid_burst_then_restart_mirrors_each_file_once(
    queue: Queue, start_daemon: Start, s3_server: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    want = _generate(samples)
    assert len(want) > 20 and LARGE in want
    env = {**s3_server.env, "MIRROR_BUCKET": bucket, "S3_ENDPOINT": s3_server.url}
    args = ("--config", CONFIG, "--workers", "2", "--empty-files", "process")
    d = start_daemon(*args, env=env)
    queue.drop(LARGE, (samples / LARGE).read_bytes())  # first: its upload is the one cut
    for rel in want:
        if rel != LARGE:
            queue.drop(rel, (samples / rel).read_bytes())
    # The upload is in flight for a few hundred ms: look for it without a pause (each
    # look is a request to the server), which wait_until's growing delay could miss.
    deadline = time.monotonic() + 60
    while not s3_server.unfinished(bucket):
        if time.monotonic() > deadline:
            pytest.fail("timed out after 60s waiting for the large file's multipart upload")
    d.kill()
    assert queue.files("underprocess"), "killed mid-burst, with files in flight"

    start_daemon(*args, env=env)
    wait_until(lambda: len(queue.files("processed")) == len(want), 120, "every file mirrored")
    assert queue.files("failed") == []
    objects = s3_server.objects(bucket)
    assert sorted(objects) == sorted(want), "one object per file, keyed by its relative path"
    s3 = s3_server.client()
    for rel, sha in want.items():
        assert objects[rel]["Metadata"]["sha256"] == sha, rel
        body = s3.get_object(Bucket=bucket, Key=rel)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha, rel
    assert s3_server.unfinished(bucket) == [], "the cut upload was aborted, not left behind"
    summaries = queue.summaries()
    assert summaries[LARGE]["deliveries"][0]["etag"].endswith("-8")  # 64 MiB: 8 parts of 8

    # The same file dropped again: already there with the same sha256, so not sent again.
    again = "docs/notes/todo.txt"
    queue.drop(again, (samples / again).read_bytes())
    wait_until(lambda: len(queue.files("processed")) == len(want) + 1, 60, "the re-drop")
    redrop = [s for s in queue.summaries().values() if s["original_name"] == again]
    first, second = sorted(redrop, key=lambda s: s["started_ts"])
    # the first may have found its own upload there too: the kill can fall between a
    # file's upload and its move, and its re-run then skips the upload
    assert first["deliveries"][0]["location"] == second["deliveries"][0]["location"]
    assert second["deliveries"][0].get("already_delivered") is True
    assert sorted(s3_server.objects(bucket)) == sorted(want)
