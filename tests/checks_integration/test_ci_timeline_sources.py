"""The timeline against a running stack: manifest writes that no record explains.

A re-run of an old day (the stack's `stale-data` fault) repoints the manifest at already-recorded versions and
writes no version record: only the manifest's updated_at shows it, and the timeline does.
"""

from __future__ import annotations

import pytest
from checks_integration.checkskit import Checks

pytestmark = pytest.mark.stack


def manifest_rows(checks: Checks, surface: str = "home") -> tuple[list[dict], list[dict]]:
    events = checks("timeline", "--tenant", "demo", "--surface", surface, "--since", "30d", expect=0).json["data"]["events"]
    return [e for e in events if e["kind"] == "manifest"], events


def test_a_rerun_of_an_old_day_shows_as_a_repoint_and_a_rollback_of_ours_once(checks: Checks) -> None:
    """Quiet on the seeded publish history; one repoint row after stale-data naming each kind's oldest version and
    its window; after our rollback, one rollback row and no repoint row."""
    rows, events = manifest_rows(checks)
    assert rows == [], rows  # every seeded swap is its publish's
    oldest = {}
    for e in events:
        if e["kind"] == "publish":
            kind, version = e["what"].split()
            oldest.setdefault(kind, (version, e["why"]))

    checks.stack.cli("inject", "stale-data", "--tenant", "demo", "--surface", "home")
    rows, _ = manifest_rows(checks)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["what"] == "manifest repointed to an old version" and row["source"] == "registry manifest"
    assert row["after"] == "; ".join(f"{kind} {oldest[kind][0]}" for kind in sorted(oldest))
    assert "no version record was written" in row["why"]
    for kind, (version, window) in oldest.items():
        assert f"{kind} {version} is of {window}" in row["why"]
    text = checks("timeline", "--tenant", "demo", "--surface", "home", "--since", "1d", json_out=False, expect=0)
    assert "manifest repointed to an old version" in text.stdout

    newest = [e for e in events if e["kind"] == "publish" and e["what"].startswith("popularity ")][-1]["after"]
    checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--kind", "popularity", "--to", newest,
           "--execute", "--reason", "undo the re-run (timeline test)", expect=0)
    rows, events = manifest_rows(checks)
    assert rows == [], rows
    assert [e["why"] for e in events if e["kind"] == "rollback"] == ["undo the re-run (timeline test)"]
