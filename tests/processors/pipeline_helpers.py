"""Small config builders shared by the processor tests, and a real `main.py --drain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def drain(watch: Path, results: Path, config: dict[str, Any], tmp_path: Path) -> None:
    """Run `main.py --drain` over `watch` with `config` (the real daemon, to completion)."""
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "main.py", "--drain", "--watch-dir", str(watch),
         "--results-dir", str(results), "--config", str(path), "--settle", "0",
         "--no-dashboard", "--log-format", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout


def chain(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A config whose files all start at the first node's tag."""
    return {"routes": [{"start": nodes[0]["tag"]}], "nodes": list(nodes), **extra}


def node(tag: str, use: str, to: str | list[str] = "end", **options: Any) -> dict[str, Any]:
    return {"name": f"{use}@{tag}", "tag": tag, "use": use, "to": to, "options": options}
