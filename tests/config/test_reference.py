"""The configuration reference in the manual and the env example match the settings
declaration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import reference
from config.loading import defaults, load
from config.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
# The manual's page whose configuration reference must be complete and current.
DOC = ROOT / "docs" / "reference" / "configuration.md"
ENV_EXAMPLE = ROOT / "deploy" / "folderd.env.example"
REGENERATE = "regenerate it: python -m config.reference --update"


def _generated_block(text: str) -> str:
    start, end = text.find(reference.BEGIN), text.find(reference.END)
    assert 0 <= start < end, f"no generated block in {DOC.name}"
    return text[start : end + len(reference.END)]


def test_docs_hold_exactly_the_current_reference() -> None:
    block = _generated_block(DOC.read_text(encoding="utf-8"))
    assert block == reference.markdown(), f"{DOC.name} is stale; {REGENERATE}"


def test_update_without_a_file_rewrites_the_manuals_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reference.DOC == DOC
    page = tmp_path / "configuration.md"
    page.write_text(f"# Configuration reference\n\n{reference.BEGIN}\nstale\n{reference.END}\n")
    monkeypatch.setattr(reference, "DOC", page)
    assert reference.main(["--update"]) == 0
    assert reference.markdown() in page.read_text()
    assert capsys.readouterr().out == f"{page}: updated\n"


def test_env_example_matches_the_generator() -> None:
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == reference.env_file(), (
        f"{ENV_EXAMPLE.name} is stale: python -m config.reference --env-file > {ENV_EXAMPLE}"
    )


def test_reference_names_every_setting_and_mode() -> None:
    text = reference.markdown()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in text
        if not setting.secret:
            assert f"`{setting.flag}" in text
    for mode in ("--watch", "--input PATH", "--drain", "--check-config"):
        assert f"`{mode}`" in text
    assert "`FOLDERD_TOKEN` | unset" in text


def test_machine_dependent_defaults_are_shown_as_words() -> None:
    assert "| `--workers N` | `FOLDERD_WORKERS` | `CPU count` | worker processes |" in (
        reference.markdown()
    )


def test_env_example_uncommented_is_a_valid_service_configuration() -> None:
    environ = {}
    for line in reference.env_file().splitlines():
        if line.startswith("#FOLDERD_"):
            key, _, value = line[1:].partition("=")
            if value:  # empty ones (token, workers, proxies, shared mode's): for the admin
                environ[key] = value
    left = {"FOLDERD_TOKEN", "FOLDERD_WORKERS", "FOLDERD_INSTANCE", "FOLDERD_STATE_DIR",
            "FOLDERD_TRUSTED_PROXIES", "FOLDERD_WORKER_MEMORY_MB",
            "FOLDERD_SOURCE_ROOTS"}  # fmt: skip
    assert {s.env for s in SETTINGS} - set(environ) == left
    loaded, stock = load([], environ), defaults()
    differs = {s.name for s in SETTINGS if getattr(loaded, s.name) != getattr(stock, s.name)}
    assert differs == set(reference.SERVICE_VALUES)
    assert str(loaded.watch_dir) == reference.SERVICE_VALUES["watch_dir"]


def test_update_rewrites_only_the_generated_block(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(f"# title\n\n{reference.BEGIN}\nold table\n{reference.END}\n\n## after\n")
    assert reference.update(doc)
    assert doc.read_text() == f"# title\n\n{reference.markdown()}\n\n## after\n"
    assert not reference.update(doc)


def test_update_refuses_a_file_without_markers(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# no block here\n")
    with pytest.raises(SystemExit, match="no generated block"):
        reference.update(doc)


def test_command_line_prints_the_reference_and_the_env_file() -> None:
    def run(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "config.reference", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    assert run() == reference.markdown() + "\n"
    assert run("--env-file") == reference.env_file()
