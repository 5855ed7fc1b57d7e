"""`notify` in a config: every problem located by its JSON path, secrets expanded from the
environment and never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from config.pipeline_parser import parse
from tests.conftest import ROOT


def _errors(notify: Any, env: dict[str, str] | None = None) -> list[str]:
    _, errors = parse({"routes": [{"start": "end"}], "notify": notify}, env or {})
    return [str(e) for e in errors]  # "<key>: <message> (<hint>)"


def test_a_valid_target() -> None:
    env = {"HOOK_SECRET": "s3cret", "TOKEN": "t0k"}
    config, errors = parse({"notify": [{
        "url": "https://hooks.example.com/x/${TOKEN}?k=${TOKEN}", "secret": "${HOOK_SECRET}",
        "events": ["file.failed"], "headers": {"X-Api-Key": "${TOKEN}"}, "timeout_s": 2.5,
    }]}, env)  # fmt: skip
    assert errors == [] and config is not None
    (t,) = config.notify
    assert (t.name, t.url) == ("notify[0]", "https://hooks.example.com/x/t0k?k=t0k")
    assert (t.secret, t.headers) == ("s3cret", {"X-Api-Key": "t0k"})
    assert t.events == {"file.failed"} and t.timeout_s == 2.5 and t.max_pending == 10_000
    shown = t.describe() + repr(t)
    assert "t0k" not in shown and "s3cret" not in shown
    assert "https://hooks.example.com/…" in t.describe()


def test_every_problem_located() -> None:
    problems = _errors([
        {"url": "ftp://x/", "events": ["file.done"]},
        {"url": "http://h/", "events": ["file.processed"], "headers": {"Folderd-Signature": "x",
         "X-Ok": "a\nb"}, "timeout_s": 0, "color": "red"},
        {"url": "http://h:99999/"},
        {"url": "http://h/", "secret": "${MISSING}"},
        {"url": "http://a/", "name": "dup"}, {"url": "http://b/", "name": "dup"},
        "http://not-an-object/",
    ])  # fmt: skip
    text = "\n".join(problems)
    for where in ("$.notify[0].url", "$.notify[1].headers.Folderd-Signature",
                  "$.notify[1].headers.X-Ok", "$.notify[1].timeout_s", "$.notify[1].color",
                  "$.notify[2].url", "$.notify[3].secret", "$.notify[5].name",
                  "$.notify[6]"):  # fmt: skip
        assert where in text, (where, text)
    assert "MISSING" in text and "unknown key" in text
    assert _errors({"url": "http://h/"}) == ["$.notify: expected a list, got an object"]
    unknown = _errors([{"url": "http://h/", "events": ["file.done"]}])
    assert any("$.notify[0].events[0]" in p for p in unknown)


def test_check_config_names_them(tmp_path: Path) -> None:
    config = tmp_path / "p.json"
    notify = [{"url": "http://h/", "events": ["nope"]}]
    config.write_text(json.dumps({"routes": [{"start": "end"}], "notify": notify}))
    command = [sys.executable, str(ROOT / "main.py"), "--check-config", "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert "$.notify[0].events[0]: unknown event 'nope'" in done.stderr
