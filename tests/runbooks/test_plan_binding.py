"""A reviewed dry run binds the apply: `runbook run --execute --plan-id ID` applies only the plan that was reviewed."""

from __future__ import annotations

from pathlib import Path

import pytest
from checks_integration.checkskit import Checks
from stackfixture import StackHandle

from handbook_site import drills


def _plan_id(record: dict) -> str:
    fix = next(s for s in record["steps"] if s["step"] == "fix")
    return fix["result"]["actions"][0]["plan"]["plan_hash"]


@pytest.mark.stack
@pytest.mark.slow
def test_execute_applies_only_the_reviewed_plan(stack_file: StackHandle, tmp_path: Path) -> None:
    """A stale plan id changes nothing (action-required, conflict); the reviewed one is applied and verified."""
    checks = Checks(stack_file)
    env = drills.client_env(stack_file.env)
    params = {"tenant": "acme", "surface": "home"}
    drills.inject(stack_file.root, "bad-publish", "acme", "home")
    dry = drills.run_runbook("rollback-manifest", params, env, tmp_path / "dry", execute=False, phase="dry")
    assert dry.verdict == "action-required", dry.describe()
    reviewed = _plan_id(dry.record)
    assert f"plan {reviewed[:12]}" in dry.record["next_action"]

    before = checks.store_snapshot()
    stale = drills.run_runbook("rollback-manifest", {**params, "plan_id": "0" * 12}, env, tmp_path / "stale",
                               execute=True, phase="stale")
    assert stale.verdict == "action-required" and "conflict" in stale.record["next_action"], stale.describe()
    assert checks.store_snapshot() == before, "a plan id that does not match changed the store"

    applied = drills.run_runbook("rollback-manifest", {**params, "plan_id": reviewed[:12]}, env, tmp_path / "go",
                                 execute=True, phase="go")
    assert applied.verdict == "mitigated", applied.describe()
