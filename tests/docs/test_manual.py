"""The manual holds to the code: its config examples pass `--check-config`, its
screenshots are the browser tests' own, and the README's links lead into it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config.pipeline import TOP_KEYS
from config.pipeline_parser import parse
from tests.docs.blocks import DOCS, ROOT, SHELL, Block, every_block, pages

README = ROOT / "README.md"
SCREENSHOTS = DOCS / "screenshots"
_VAR = re.compile(r"\$\{(\w+)\}")  # a ${VAR} without a default: the test gives it a value
_HEREDOC = re.compile(r"<<'?JSON'?\n(?P<config>.*?)^JSON$", re.S | re.M)
_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def _whole_config(text: str) -> dict[str, Any] | None:
    """The block as a pipeline config when it is one: a JSON object of top-level keys."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and value and set(value) <= set(TOP_KEYS):
        return value
    return None


def _configs() -> list[tuple[str, str]]:
    """(where, text) of every whole config the manual shows: ```json blocks, and the
    `cat > … <<'JSON'` of shell blocks."""
    found = [(b.where, b.text) for b in every_block("json") if _whole_config(b.text)]
    for block in every_block(SHELL):
        found += [(block.where, m["config"]) for m in _HEREDOC.finditer(block.text)]
    return found


def _fragments() -> list[Block]:
    """```json blocks of `"key": value` pairs of a config (`"outputs": {…}`)."""
    found = []
    for block in every_block("json"):
        try:
            value = json.loads("{" + block.text + "}")
        except ValueError:
            continue
        if isinstance(value, dict) and set(value) <= set(TOP_KEYS):
            found.append(block)
    return found


def _environ(text: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLDERD_")}
    env.update({name: f"dummy-{name.lower()}" for name in _VAR.findall(text)})
    return env


def _folderd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


CONFIGS = _configs()
FRAGMENTS = _fragments()


@pytest.mark.parametrize(("where", "text"), CONFIGS, ids=[w for w, _ in CONFIGS])
def test_a_config_in_the_manual_passes_check_config(where: str, text: str, tmp_path: Path) -> None:
    config = tmp_path / "pipeline_config.json"
    config.write_text(text, encoding="utf-8")
    done = _folderd("--check-config", "--config", str(config), env=_environ(text))
    assert done.returncode == 0, f"{where}: --check-config says\n{done.stderr}"


def test_the_manuals_test_cases_pass_against_the_default_config(tmp_path: Path) -> None:
    """The cases "Testing a config" shows are run for real, beside the default pipeline,
    from the repository root (their `input_file` is relative to it)."""
    (cases,) = [b for b in every_block("json") if (_whole_config(b.text) or {}).keys() == {"tests"}]
    config = json.loads((ROOT / "pipeline_config.json").read_text(encoding="utf-8"))
    config["tests"] = json.loads(cases.text)["tests"]
    merged = tmp_path / "pipeline_config.json"
    merged.write_text(json.dumps(config), encoding="utf-8")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    done = _folderd("--test", "--config", str(merged), env=_environ(""))
    assert done.returncode == 0, f"{cases.where}:\n{done.stdout}{done.stderr}"
    assert f"{len(config['tests'])} passed, 0 failed" in done.stdout


@pytest.mark.parametrize("block", FRAGMENTS, ids=[b.where for b in FRAGMENTS])
def test_a_config_fragment_in_the_manual_has_the_right_shape(block: Block) -> None:
    raw = json.loads("{" + block.text + "}")
    _, errors = parse(raw, _environ(block.text))
    # A fragment alone may leave tags without a node; its keys and values must be right.
    assert [str(e) for e in errors if "no node" not in str(e)] == [], block.where


def test_the_manual_shows_whole_configs_and_fragments() -> None:
    wheres = " ".join(w for w, _ in CONFIGS)
    for page in ("config-format.md", "lookups.md", "plugins.md", "testing.md", "sql.md"):
        assert page in wheres
    assert len(FRAGMENTS) >= 3


def test_a_broken_config_would_be_caught(tmp_path: Path) -> None:
    """The check above is --check-config's: a wrong option in an example fails it."""
    text = '{"routes": [{"start": "log"}], "nodes": [{"tag": "log", "use": "uper"}]}'
    assert _whole_config(text) is not None
    config = tmp_path / "bad.json"
    config.write_text(text)
    done = _folderd("--check-config", "--config", str(config), env=_environ(text))
    assert done.returncode == 2 and "uper" in done.stderr


def _images(text: str) -> set[str]:
    return {Path(m).name for m in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)}


def test_every_screenshot_is_shown_and_written_by_a_browser_test() -> None:
    shown = set().union(*(_images(p.read_text(encoding="utf-8")) for p in pages()))
    on_disk = {p.name for p in SCREENSHOTS.glob("*.png")}
    assert shown == on_disk, "a page shows a missing screenshot, or one is shown nowhere"
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "tests" / "dashboard").glob("*.py")]
    tests = "".join(s for s in sources if "TEST_SCREENSHOTS" in s)
    for name in on_disk:
        stem = name.removesuffix(".png")
        assert f'"{name}"' in tests or f'"{stem}"' in tests, f"no browser test writes {name}"


def test_the_readme_is_a_front_door_into_the_manual() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "docs/screenshots/overview.png" in text
    assert "make run" in text and "make test" in text
    targets = {m["target"] for m in _LINK.finditer(text) if "://" not in m["target"]}
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert missing == [], f"README links to files that do not exist: {missing}"
    linked = {t for t in targets if t.startswith("docs/") and t.endswith(".md")}
    assert len(linked) >= 30


def test_the_api_reference_is_generated_from_the_openapi_document() -> None:
    from dashboard import apiref

    text = apiref.PAGE.read_text(encoding="utf-8")
    start, end = text.find(apiref.BEGIN), text.find(apiref.END)
    assert 0 <= start < end, f"no generated block in {apiref.PAGE}"
    assert text[start : end + len(apiref.END)] == apiref.markdown(), (
        f"{apiref.PAGE} is stale: python -m dashboard.apiref --update"
    )
