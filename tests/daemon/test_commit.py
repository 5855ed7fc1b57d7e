"""Committing results: a re-run replaces the same input's results, outputs it no longer
makes are removed, and another input's results are never touched."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.commit import commit_results


def _temps(tmp: Path, uid: str, outputs: dict[str, str], rel: str) -> list[tuple[str, str]]:
    temps = []
    for suffix, text in outputs.items():
        p = tmp / f"{uid}.{suffix}"
        p.write_text(text)
        temps.append((str(p), f"{rel}.{suffix}"))
    summary = tmp / f"{uid}.json"
    files = [f"{rel}.{s}" for s in outputs]
    summary.write_text(json.dumps({"uid": uid, "output_files": files}))
    return [*temps, (str(summary), f"{rel}.json")]


def test_a_rerun_replaces_its_results_and_drops_outputs_it_no_longer_makes(
    tmp_path: Path,
) -> None:
    results, tmp = tmp_path / "results", tmp_path / "tmp"
    results.mkdir()
    tmp.mkdir()
    first = _temps(tmp, "u1", {"out": "old\n", "errors": "e\n"}, "sub/a.log")
    assert commit_results(results, "u1", first, fsync=True) is None
    assert (results / "sub/a.log.errors").exists()

    again = _temps(tmp, "u1", {"out": "new\n"}, "sub/a.log")
    assert commit_results(results, "u1", again, fsync=True, rerun=True) is None
    assert (results / "sub/a.log.out").read_text() == "new\n"
    assert not (results / "sub/a.log.errors").exists()
    assert list(tmp.iterdir()) == []


def test_outputs_listed_by_another_inputs_summary_are_never_removed(tmp_path: Path) -> None:
    results, tmp = tmp_path / "results", tmp_path / "tmp"
    results.mkdir()
    tmp.mkdir()
    assert commit_results(results, "u1", _temps(tmp, "u1", {"errors": "e\n"}, "a"), True) is None
    other = _temps(tmp, "u2", {"out": "x\n"}, "a")
    assert commit_results(results, "u2", other, fsync=False, rerun=True) is None
    assert (results / "a.errors").exists(), "u1's output is not u2's to remove"
