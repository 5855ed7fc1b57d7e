"""`http_lookup` end to end: `main.py --input` on a CSV of IDs against a real local API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT
from tests.processors.lookup_api import Api, serve

pytestmark = pytest.mark.integration


def test_a_csv_of_ids_is_enriched_in_order_with_misses_routed(tmp_path: Path) -> None:
    ids = [f"x{i}" if i % 10 == 7 else str(i) for i in range(60)]
    src = tmp_path / "ids.csv"
    src.write_text("id,qty\n" + "".join(f"{i},{n}\n" for n, i in enumerate(ids)))
    with serve(Api(delay_s=0.005)) as api:
        lookup = {
            "url": api.url + "/item/{id}",
            "headers": {"X-Api-Key": "${LOOKUP_KEY}"},
            "concurrency": 4,
            "rate_per_s": 200,
            "merge": ".",
            "route": [{"status": 404, "tag": "missing"}],
            "failed_tag": "nolookup",
        }
        config = {
            "routes": [
                {"glob": "*.csv", "start": "ids", "reader": {"type": "csv", "header": True}}
            ],
            "nodes": [{"name": "enrich", "tag": "ids", "use": "http_lookup", "options": lookup}],
            "outputs": {"missing": {}, "nolookup": {}},
        }
        (tmp_path / "pipeline.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
        env["LOOKUP_KEY"] = "k-3f9a-secret"
        run = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "--log-format", "json", "--input", str(src),
             "--config", str(tmp_path / "pipeline.json"), "--results-dir", str(tmp_path / "out")],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["status"] == "processed" and summary["lines_in"] == 60
    assert summary["outputs"] == {"out": 54, "missing": 6}
    assert summary["aggregates"]["enrich"]["requests"] == 60
    found = [
        orjson.loads(line) for line in (tmp_path / "out" / "ids.csv.out").read_text().splitlines()
    ]
    assert [r["id"] for r in found] == [i for i in ids if not i.startswith("x")]
    assert found[0] == {"id": "0", "qty": "0", "name": "item-0"}
    missing = (tmp_path / "out" / "ids.csv.missing").read_text().splitlines()
    assert [orjson.loads(line)["id"] for line in missing] == [i for i in ids if i.startswith("x")]
    assert api.api_keys == {"k-3f9a-secret"}
    assert "k-3f9a-secret" not in run.stdout + run.stderr, "the secret is never logged"
