"""Admin and infrastructure faults through `recsys-checks`: bad rules, bad config, a revert that loses a race with
an admin change, the object store down and the admin database unavailable (each healed before the next).
"""

from __future__ import annotations

import json

import pytest
from checks_integration.checkskit import Checks, one_line

from recsys_checks.core.errors import Conflict
from recsys_checks.levers.revert import apply_revert, plan_revert
from recsys_checks.reach.settings import Target

pytestmark = pytest.mark.stack



@pytest.mark.parametrize(("kind", "fault", "tenant", "cause"), [
    ("rules", "bad-rules", "acme", "rules_block_all"),
    ("config", "bad-config", "demo", "config_weights"),
])
def test_bad_document_empties_recs_and_revert_restores_them(
    checks: Checks, kind: str, fault: str, tenant: str, cause: str
) -> None:
    """Probe empty with the cause named; revert --previous --execute verifies; history shows both; repeat is noop."""
    good = checks(kind, "show", "--tenant", tenant, expect=0).json["data"]["version"]
    checks.stack.cli("inject", fault, "--tenant", tenant, "--surface", "home")

    bad = checks(kind, "show", "--tenant", tenant, expect=0).json["data"]["version"]
    assert bad != good
    probe = checks("recs", "probe", "--tenant", tenant, "--surface", "home", expect=1).by_check("recs.probe")
    assert probe["data"]["items"] == [] and probe["data"]["cause"] == cause
    assert probe["data"]["runbook"] == "rollback-config-rules" and probe["data"][f"{kind}_version"] == bad

    result = checks(kind, "revert", "--tenant", tenant, "--previous", "--execute", expect=0).json
    assert result["status"] == "applied"
    assert result["plan"]["changes"][0]["before"] == bad and result["plan"]["changes"][0]["after"] == good
    assert result["verification"]["status"] == "ok" and result["verification"]["data"]["served"] == good
    probe = checks("recs", "probe", "--tenant", tenant, "--surface", "home", expect=0).by_check("recs.probe")
    assert probe["data"]["items"] and probe["data"][f"{kind}_version"] == good

    changes = checks(kind, "history", "--tenant", tenant, expect=0).json["data"]["changes"]
    revert, breakage = changes[0], changes[1]
    assert (revert["before"], revert["after"]) == (bad[:12], good[:12])
    assert (breakage["before"], breakage["after"]) == (good[:12], bad[:12])
    # Like the suite, the service's audit log names the API key's identity, not a header the client sent.
    assert revert["who"].startswith("api-key:") and breakage["who"].startswith("api-key:")

    again = checks(kind, "revert", "--tenant", tenant, "--to", good, "--execute", expect=0).json
    assert again["status"] == "noop" and again["verification"]["status"] == "ok"
    assert len(checks(kind, "history", "--tenant", tenant, expect=0).json["data"]["changes"]) == len(changes)

    keys = [k for k in checks.list_keys(f"registry/audit/{tenant}/_tenant/")
            if k.endswith(".json") and not k.endswith(".intent.json")]
    reverts = [d for d in (json.loads(checks.read_object(k)) for k in keys) if d["action"] == f"{kind}.revert"]
    assert len(reverts) == 1 and reverts[0]["plan_hash"] == result["plan"]["plan_hash"]


def test_revert_after_a_concurrent_admin_change_is_a_conflict_and_keeps_that_change(checks: Checks) -> None:
    """plan_revert, then another PUT of the config, then apply: Conflict (exit code 3); the concurrent doc stays."""
    target = Target.from_env(checks.stack.env)
    plan = plan_revert(target, "acme", "config", previous=True, reason="loses the race")
    current = checks.admin("GET", "/v1/admin/tenants/acme/config", "acme")
    concurrent = dict(current.json()["config"])
    concurrent["weights"] = {**concurrent["weights"], "pop": 2.0}
    put = checks.admin("PUT", "/v1/admin/tenants/acme/config", "acme", json=concurrent,
                       headers={"X-Actor": "another-operator"})
    assert put.status_code == 200, put.text
    state_before = checks.admin_state("acme")

    with pytest.raises(Conflict) as caught:
        apply_revert(target, plan, execute=True)
    assert caught.value.exit_code == 3 and one_line(str(caught.value)) and "changed since the plan" in str(caught.value)
    assert checks.admin("GET", "/v1/admin/tenants/acme/config", "acme").json()["config"] == concurrent
    assert checks.admin_state("acme") == state_before
    assert checks("recs", "probe", "--tenant", "acme", "--surface", "home", expect=0).by_check("recs.probe")[
        "data"]["items"]


def test_store_down_fails_health_and_status_until_healed(checks: Checks) -> None:
    """Store down: health 1; manifest status 2 with one Unreachable line; after heal both 0 and the probe has items."""
    checks.stack.cli("inject", "store-down", "--tenant", "demo", "--surface", "home")
    try:
        health = checks("health", expect=1).json
        assert health["status"] == "fail"
        status = checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=2)
        assert status.stdout == "" and one_line(status.stderr)
        if checks.store == "s3":
            assert "unreachable" in status.stderr and "RECSYS_ARTIFACT_S3_ENDPOINT" in status.stderr
        else:
            assert "file store unusable" in status.stderr and "not a directory" in status.stderr
            # Without the 5 s timeouts of a frozen S3 server these are cheap: check them on the file store only.
            assert "artifact_store" in health["summary"]
            scan = checks("freshness", expect=2)  # the fleet could not be listed: inconclusive, never "no surfaces"
            assert "not a directory" in scan.json["unread"] and scan.json["data"]["counts"].get("healthy", 0) == 0
            probe = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=1).by_check("recs.probe")
            assert probe["data"]["cause"] == "store_unreachable"
    finally:
        checks.stack.cli("heal")
    checks("health", expect=0)
    checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=0)
    assert checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=0).by_check("recs.probe")[
        "data"]["items"]


def test_not_ready_fails_health_naming_the_database_until_healed(checks: Checks) -> None:
    """Admin database unavailable: health exits 1 naming the database, and the probe blames the database, not the
    artifact store; heal: health exits 0."""
    checks.stack.cli("inject", "not-ready", "--tenant", "demo", "--surface", "home")
    try:
        health = checks("health", expect=1).json
        assert health["data"]["ready"]["status_code"] == 503 and "database" in health["summary"]
        probe = checks("recs", "probe", "--tenant", "demo", "--surface", "home").by_check("recs.probe")
        if probe["status"] == "fail":  # the service may still answer from its caches
            assert probe["data"]["cause"] != "store_unreachable", probe["summary"]
            assert "artifact store" not in probe["summary"]
    finally:
        checks.stack.cli("heal")
    assert checks("health", expect=0).json["status"] == "ok"


def test_no_secret_reached_any_output(checks: Checks) -> None:
    """Across every run of this module the API key and S3 credentials never appeared on stdout or stderr."""
    assert len(checks.runs) >= 15
    for run in checks.runs:
        for value in checks.secrets.values():
            assert value not in run.stdout and value not in run.stderr
