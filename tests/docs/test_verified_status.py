"""Runbook pages show when each drill last passed, from the results the drills write, or say "not verified"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handbook_site import drills
from handbook_site import macros as docs_macros
from recsys_checks.runbook import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _outcome(phase: str, verdict: str, cause: str | None = None) -> drills.Outcome:
    return drills.Outcome(phase, 0, verdict, cause, 1.0, Path("."))


def test_without_results_every_drill_is_not_verified(tmp_path):
    page = docs_macros.render(load_spec("rollback-manifest"), results=tmp_path)
    assert "**Not verified**: no drill of this runbook has passed" in page
    assert page.count("| **not verified** |") == 7  # bad-publish, shrunk-publish, foreign-artifact on both stores; corrupt-manifest


def test_a_passed_drill_shows_its_date_commit_and_verdicts(tmp_path):
    outcomes = [_outcome("healthy", "healthy"), _outcome("dry-run", "action-required", "empty_artifact"),
                _outcome("execute", "mitigated", "empty_artifact"), _outcome("rerun", "healthy")]
    path = drills.write_result("rollback-manifest", "bad-publish", "file", outcomes, results=tmp_path)
    doc = json.loads(path.read_text())
    assert doc["runbook"] == "rollback-manifest" and doc["fault"] == "bad-publish" and doc["store"] == "file"
    assert doc["verdicts"]["execute"] == {"verdict": "mitigated", "cause": "empty_artifact"}
    assert doc["date"].endswith("Z")

    page = docs_macros.render(load_spec("rollback-manifest"), results=tmp_path)
    assert "**Verified** 1 of 7 drill(s) passed" in page
    row = next(line for line in page.splitlines() if line.startswith("| `bad-publish` | file |"))
    assert doc["date"] in row and "healthy, action-required, mitigated, healthy" in row
    if doc["commit"]:
        assert doc["commit"][:12] in row
    assert page.count("| **not verified** |") == 6


def test_forgetting_a_result_makes_the_drill_unverified_again(tmp_path):
    drills.write_result("rollback-manifest", "corrupt-manifest", "file", [_outcome("healthy", "healthy")],
                        results=tmp_path)
    assert drills.read_results("rollback-manifest", tmp_path)
    drills.forget_result("rollback-manifest", "corrupt-manifest", "file", results=tmp_path)
    assert not drills.read_results("rollback-manifest", tmp_path)


@pytest.mark.parametrize("content", ["not json", json.dumps({"runbook": "rollback-manifest", "passed": False})])
def test_unreadable_or_failed_results_are_not_shown_as_verified(tmp_path, content):
    (tmp_path / "rollback-manifest--bad-publish--file.json").write_text(content)
    assert "**Not verified**" in docs_macros.render(load_spec("rollback-manifest"), results=tmp_path)


def test_the_results_folder_is_git_ignored():
    assert ".drills/" in (ROOT / ".gitignore").read_text().splitlines()
