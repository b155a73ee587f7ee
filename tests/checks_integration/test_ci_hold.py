"""The hold lever end to end on the running stack (each store): while held, the scheduler (which asks the gate)
publishes nothing, the pipeline itself would (it checks no hold, as the suite's does not), the surface can still be
rolled back and shows as held, and the scheduler publishes again once cleared.

It runs on the session's shared stacks (no stack of its own to start), on acme/search, and leaves that surface
unheld and freshly published.
"""

from __future__ import annotations

import json

import pytest
from checks_integration.checkskit import Checks
from stackfixture import StackHandle

pytestmark = pytest.mark.stack

T, S = "acme", "search"
WHERE = ("--tenant", T, "--surface", S)


@pytest.fixture
def checks(stack: StackHandle) -> Checks:
    """`recsys-checks` bound to the session's shared stack of each store."""
    return Checks(stack)


def test_a_held_surface_is_not_scheduled_allows_rollback_and_publishes_after_clear(checks: Checks) -> None:
    """hold set --execute; the scheduler asks the gate and publishes nothing (exit 1, saying held); rollback still
    applies; clear; the scheduler publishes (exit 0)."""
    manifest_key = f"registry/current/{T}/{S}/manifest.json"
    assert checks("hold", "status", *WHERE, expect=0).json["data"]["held"] is False
    plan = checks("hold", "set", *WHERE, "--reason", "SRM in exp-home-ranker", expect=0).json
    assert plan["status"] == "planned"
    applied = checks("hold", "set", *WHERE, "--reason", "SRM in exp-home-ranker", "--execute", expect=0).json
    assert applied["status"] == "applied" and applied["audit"]
    assert checks("hold", "status", *WHERE, expect=1).json["data"]["held"] is True

    before = checks.read_object(manifest_key)
    proc = checks.stack.cli("scheduled-publish", "--tenant", T, "--surface", S, check=False)
    assert proc.returncode == 1, proc
    assert "held: not publishing" in proc.stdout and "SRM in exp-home-ranker" in proc.stdout
    assert checks.read_object(manifest_key) == before

    status = checks("manifest", "status", *WHERE, expect=0).json
    assert status["data"]["condition"] == "held" and status["status"] == "warn"

    rollback = checks("manifest", "rollback", *WHERE, "--previous", "--execute", "--reason", "recover while held",
                      expect=0).json
    assert rollback["status"] == "applied"
    assert checks.read_object(manifest_key) != before

    checks("hold", "clear", *WHERE, "--reason", "assignment fixed", "--execute", expect=0)
    assert checks("hold", "status", *WHERE, expect=0).json["data"]["held"] is False
    marker = json.loads(checks.read_object(f"registry/current/{T}/{S}/hold.json"))
    assert marker["held"] is False and marker["previous"]["reason"] == "SRM in exp-home-ranker"
    proc = checks.stack.cli("scheduled-publish", "--tenant", T, "--surface", S, check=False)
    assert proc.returncode == 0, proc
