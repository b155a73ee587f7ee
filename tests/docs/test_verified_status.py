"""Drill results: the drill status page shows when each drill last passed, from the results the drills write; a
runbook page gives only one line, the latest result when the build has one, and a link to that page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import specskit

from handbook_site import drills
from handbook_site import macros as docs_macros

ROOT = Path(__file__).resolve().parents[2]
LINK = "[Drill status](../../reference/drill-status.md#rollback-manifest)"


def _outcome(phase: str, verdict: str, cause: str | None = None) -> drills.Outcome:
    return drills.Outcome(phase, 0, verdict, cause, 1.0, Path("."))


def _drills(runbook_id: str) -> int:
    """How many drill runs (fault x store) the runbook's spec declares."""
    return sum(len(d.stores) for d in specskit.spec(runbook_id).drills)


def _status_section(page: str, runbook_id: str) -> str:
    return page.split(f"{{ #{runbook_id} }}", 1)[1].split("\n## ", 1)[0]


def test_without_results_a_runbook_page_only_links_the_drill_status_page(tmp_path):
    """A build on a machine that ran no drill says nothing alarming on the runbook page: one link, no banner."""
    page = docs_macros.render(specskit.spec("rollback-manifest"), results=tmp_path)
    assert "verified" not in page.lower()
    lines = [line for line in page.splitlines() if "drill-status.md" in line]
    assert lines == [f"Drill results: {LINK}."]
    status = _status_section(docs_macros.drill_status(results=tmp_path), "rollback-manifest")
    assert status.count("| no result in this build |") == _drills("rollback-manifest")


@pytest.mark.subprocess
def test_a_passed_drill_shows_its_date_commit_and_verdicts(tmp_path):
    outcomes = [_outcome("healthy", "healthy"), _outcome("dry-run", "action-required", "empty_artifact"),
                _outcome("execute", "mitigated", "empty_artifact"), _outcome("rerun", "healthy")]
    path = drills.write_result("rollback-manifest", "bad-publish", "file", outcomes, results=tmp_path)
    doc = json.loads(path.read_text())
    assert doc["runbook"] == "rollback-manifest" and doc["fault"] == "bad-publish" and doc["store"] == "file"
    assert doc["verdicts"]["execute"] == {"verdict": "mitigated", "cause": "empty_artifact"}
    assert doc["date"].endswith("Z")

    page = docs_macros.render(specskit.spec("rollback-manifest"), results=tmp_path)
    lines = [line for line in page.splitlines() if "drill-status.md" in line]
    total = _drills("rollback-manifest")
    assert lines == [f"Drills: 1 of {total} passed in this build's results, the latest on {doc['date']} ({LINK})."]

    status = _status_section(docs_macros.drill_status(results=tmp_path), "rollback-manifest")
    row = next(line for line in status.splitlines() if line.startswith("| `bad-publish` | file |"))
    assert doc["date"] in row and "healthy, action-required, mitigated, healthy" in row
    if doc["commit"]:
        assert doc["commit"][:12] in row
    assert status.count("| no result in this build |") == _drills("rollback-manifest") - 1


def test_the_drill_status_page_has_a_section_for_every_runbook(tmp_path):

    status = docs_macros.drill_status(results=tmp_path)
    for spec in specskit.all_specs():
        assert f"## {spec.title} {{ #{spec.id} }}" in status


@pytest.mark.subprocess
def test_forgetting_a_result_makes_the_drill_unverified_again(tmp_path):
    drills.write_result("rollback-manifest", "corrupt-manifest", "file", [_outcome("healthy", "healthy")],
                        results=tmp_path)
    assert drills.read_results("rollback-manifest", tmp_path)
    drills.forget_result("rollback-manifest", "corrupt-manifest", "file", results=tmp_path)
    assert not drills.read_results("rollback-manifest", tmp_path)


@pytest.mark.parametrize("content", ["not json", json.dumps({"runbook": "rollback-manifest", "passed": False})])
def test_unreadable_or_failed_results_are_not_shown_as_passed(tmp_path, content):
    (tmp_path / "rollback-manifest--bad-publish--file.json").write_text(content)
    assert f"Drill results: {LINK}." in docs_macros.render(specskit.spec("rollback-manifest"), results=tmp_path)
    assert "| `bad-publish` | file | no result in this build |" in docs_macros.drill_status(results=tmp_path)


def test_the_results_folder_is_git_ignored():
    assert ".drills/" in (ROOT / ".gitignore").read_text().splitlines()
