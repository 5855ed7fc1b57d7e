"""Committing results: a re-run replaces the same input's results, outputs it no longer
makes are removed, and another input's results are never touched."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.commit import Pending, Temp, commit_group, commit_results


def _temps(tmp: Path, uid: str, outputs: dict[str, str], rel: str) -> list[Temp]:
    temps = []
    for suffix, text in outputs.items():
        p = tmp / f"{uid}.{suffix}"
        p.write_text(text)
        temps.append(Temp(str(p), f"{rel}.{suffix}"))
    summary = tmp / f"{uid}.json"
    files = [f"{rel}.{s}" for s in outputs]
    summary.write_text(json.dumps({"uid": uid, "output_files": files}))
    return [*temps, Temp(str(summary), f"{rel}.json")]


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


def test_a_group_commits_every_input_and_a_failure_is_only_its_own(tmp_path: Path) -> None:
    """Several inputs' results synced as one group (`commit_group`), into two results
    folders: each input is committed, and one whose temps are gone gets the error alone."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    group = [
        Pending(tmp_path / "results", "u1", _temps(tmp, "u1", {"out": "1\n"}, "a.log")),
        Pending(tmp_path / "results", "u2", _temps(tmp, "u2", {"out": "2\n"}, "b.log")),
        Pending(tmp_path / "other", "u3", _temps(tmp, "u3", {"out": "3\n"}, "sub/c.log")),
    ]
    (tmp / "u2.out").unlink()  # say, removed by hand before the commit
    errors = commit_group(group, fsync=True)
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], FileNotFoundError)
    assert (tmp_path / "results/a.log.out").read_text() == "1\n"
    assert (tmp_path / "other/sub/c.log.out").read_text() == "3\n"
    assert json.loads((tmp_path / "other/sub/c.log.json").read_text())["uid"] == "u3"
    assert not (tmp_path / "results/b.log.json").exists(), "no summary without its output"
    assert list(tmp.iterdir()) == [], "the failed input's temps are removed too"
