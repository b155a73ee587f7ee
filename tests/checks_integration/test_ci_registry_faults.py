"""Registry faults seen and repaired through `recsys-checks`: bad publish, corrupt manifest, missing blob, stale
manifest, stale service cache, and a rollback that loses a race with a publish.

Each scenario breaks its own tenant/surface of the module's stack and leaves it repaired for the next one.
"""

from __future__ import annotations

import json

import pytest
from checks_integration.checkskit import Checks, one_line

from recsys_checks.core.errors import Conflict
from recsys_checks.levers.rollback import apply_rollback, plan_rollback
from recsys_checks.reach.settings import Target

pytestmark = pytest.mark.stack


def inject(checks: Checks, fault: str, tenant: str, surface: str) -> None:
    checks.stack.cli("inject", fault, "--tenant", tenant, "--surface", surface)


def served_popularity(checks: Checks, tenant: str, surface: str) -> str:
    status = checks("manifest", "status", "--tenant", tenant, "--surface", surface).json
    return {a["kind"]: a["version"] for a in status["data"]["artifacts"]}["popularity"]


def invalidate(checks: Checks, tenant: str, surface: str) -> None:
    result = checks("cache", "invalidate", "--tenant", tenant, "--surface", surface, "--targets", "popularity",
                    "--execute", expect=0).json
    assert result["status"] == "applied"


def audit_records(checks: Checks, tenant: str, scope: str) -> dict[str, dict]:
    """The audit records under ``registry/audit/<tenant>/<scope>/`` (not their intents), by key, from the store."""
    keys = [k for k in checks.list_keys(f"registry/audit/{tenant}/{scope}/")
            if k.endswith(".json") and not k.endswith(".intent.json")]
    return {k: json.loads(checks.read_object(k)) for k in keys}


def test_bad_publish_is_detected_rolled_back_audited_and_idempotent(checks: Checks) -> None:
    """Empty popularity: status 1, probe empty; rollback --execute repoints but exits 1 while the service serves its
    cache, naming the invalidation; probe items after it; repeating the rollback is a no-op."""
    good = served_popularity(checks, "demo", "home")
    inject(checks, "bad-publish", "demo", "home")

    status = checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=1).json
    assert status["data"]["condition"] == "invalid"
    assert "popularity" in status["summary"] and "no items" in status["summary"]
    probe = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=1).by_check("recs.probe")
    assert probe["data"]["items"] == [] and probe["data"]["cause"] == "empty_artifact"

    reason = "bad publish: empty popularity (integration test)"
    # Only popularity is broken: the bad publish re-ran yesterday, whose cooc is the version already served, and a
    # rollback of every kind would also step that healthy cooc back a day, onto data older than the freshness limit.
    run = checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--kind", "popularity", "--previous",
                 "--execute", "--reason", reason, expect=1)
    result = run.json
    assert result["status"] == "applied" and result["verification"]["status"] == "ok"
    # The swap is done, but users still get the cached (empty) artifact: the result says so and names the fix.
    assert result["service"]["status"] == "fail" and result["service"]["data"]["verdict"] in ("empty", "cache_stale")
    assert "cache invalidate" in result["service"]["summary"] and "--invalidate-cache" in result["service"]["summary"]
    moved = {c["kind"]: c["after_version"] for c in result["plan"]["changes"]}
    assert moved["popularity"] == good

    assert checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=0).json["data"][
        "condition"] == "healthy"
    # The service keeps the bad manifest until its cache TTL; the probe says so and names the fix.
    stale = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=1).by_check("recs.probe")
    assert stale["data"]["cause"] == "cache_stale" and "cache invalidate" in stale["summary"]
    invalidate(checks, "demo", "home")
    after = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=0)
    assert after.by_check("recs.probe")["data"]["items"]
    assert after.by_check("recs.served_vs_published")["data"]["verdict"] == "consistent"

    again = checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--to", good, "--execute",
                   "--reason", reason, expect=0).json
    assert again["status"] == "noop" and again["audit"] is None

    records = audit_records(checks, "demo", "home")
    rollbacks = [r for r in records.values() if r["action"] == "manifest.rollback"]
    assert len(rollbacks) == 1 and any(result["audit"].endswith(key) for key in records)
    record = rollbacks[0]
    assert record["why"] == reason and record["plan_hash"] == result["plan"]["plan_hash"]
    assert record["after"]["current"]["popularity"].endswith(f"/{good}.json")
    assert any(r["action"] == "cache.invalidate" for r in records.values())

    timeline = checks("timeline", "--tenant", "demo", "--surface", "home", expect=0).json
    rollbacks = [e for e in timeline["data"]["events"] if e["kind"] == "rollback"]
    assert len(rollbacks) == 1 and reason in rollbacks[0]["why"] and good[:12] in rollbacks[0]["after"]


def test_corrupt_manifest_is_invalid_422_and_rollback_repairs_it(checks: Checks) -> None:
    """Truncated manifest: status 1 invalid, probe names 422 incompatible; rollback --previous --execute repairs it."""
    good = served_popularity(checks, "demo", "search")
    inject(checks, "corrupt-manifest", "demo", "search")

    status = checks("manifest", "status", "--tenant", "demo", "--surface", "search", expect=1).json
    assert status["data"]["condition"] == "invalid" and "not valid JSON" in status["summary"]
    probe = checks("recs", "probe", "--tenant", "demo", "--surface", "search", expect=1).by_check("recs.probe")
    assert probe["data"]["cause"] == "artifact_incompatible" and "422" in probe["summary"]
    assert probe["data"]["problem"]["status"] == 422

    result = checks("manifest", "rollback", "--tenant", "demo", "--surface", "search", "--previous", "--execute",
                    "--reason", "corrupt manifest", expect=0).json
    assert result["status"] == "applied" and result["verification"]["status"] == "ok"
    assert {c["kind"]: c["after_version"] for c in result["plan"]["changes"]}["popularity"] == good
    checks("manifest", "status", "--tenant", "demo", "--surface", "search", expect=0)
    invalidate(checks, "demo", "search")
    probe = checks("recs", "probe", "--tenant", "demo", "--surface", "search", expect=0).by_check("recs.probe")
    assert probe["data"]["items"]


def test_missing_blob_is_named_and_rollback_repairs_it(checks: Checks) -> None:
    """Popularity pointing at a missing blob: status 1 names the blob; rollback --kind popularity --previous repairs."""
    good = served_popularity(checks, "acme", "home")
    inject(checks, "missing-blob", "acme", "home")

    status = checks("manifest", "status", "--tenant", "acme", "--surface", "home", expect=1).json
    missing = "0" * 64
    assert status["data"]["condition"] == "invalid" and missing in status["summary"]
    probe = checks("recs", "probe", "--tenant", "acme", "--surface", "home", expect=1).by_check("recs.probe")
    assert probe["data"]["items"] == [] and probe["data"]["cause"] == "missing_blob" and missing in probe["summary"]

    result = checks("manifest", "rollback", "--tenant", "acme", "--surface", "home", "--kind", "popularity",
                    "--previous", "--execute", expect=1).json  # the service still serves its cached manifest
    assert result["status"] == "applied" and result["service"]["status"] == "fail"
    assert [(c["kind"], c["after_version"]) for c in result["plan"]["changes"]] == [("popularity", good)]
    checks("manifest", "status", "--tenant", "acme", "--surface", "home", expect=0)
    invalidate(checks, "acme", "home")
    assert checks("recs", "probe", "--tenant", "acme", "--surface", "home", expect=0).by_check("recs.probe")[
        "data"]["items"]


def test_stale_manifest_fails_status_and_freshness_for_that_surface_only(checks: Checks) -> None:
    """updated_at 72 h ago: status 1 stale; freshness 1 with only that surface stale; a publish makes both 0 again."""
    inject(checks, "stale-manifest", "acme", "search")

    status = checks("manifest", "status", "--tenant", "acme", "--surface", "search", expect=1).json
    assert status["data"]["condition"] == "stale" and status["data"]["age_seconds"] >= 71 * 3600
    fleet = checks("freshness", expect=1).json
    rows = {(r["tenant"], r["surface"]): r for r in fleet["data"]["rows"]}
    assert rows.pop(("acme", "search"))["condition"] == "stale"
    assert {k: r["condition"] for k, r in rows.items()} == {
        ("demo", "home"): "healthy", ("demo", "search"): "healthy", ("acme", "home"): "healthy"}
    assert fleet["data"]["counts"]["stale"] == 1 and "acme/search" in fleet["summary"]
    # A wider limit accepts the 72 h old manifest.
    checks("manifest", "status", "--tenant", "acme", "--surface", "search", "--max-age", "4d", expect=0)

    checks.stack.cli("publish", "--tenant", "acme", "--surface", "search")
    checks("manifest", "status", "--tenant", "acme", "--surface", "search", expect=0)
    checks("freshness", expect=0)


def test_stale_cache_is_diagnosed_and_fixed_by_invalidation(checks: Checks) -> None:
    """A publish the service has not reloaded: probe exits 1 with verdict cache_stale; invalidate; then consistent."""
    before = served_popularity(checks, "demo", "search")
    inject(checks, "stale-cache", "demo", "search")
    published = served_popularity(checks, "demo", "search")
    assert published != before

    run = checks("recs", "probe", "--tenant", "demo", "--surface", "search", expect=1)
    assert run.by_check("recs.probe")["status"] == "ok"  # items come back: the old version's
    verdict = run.by_check("recs.served_vs_published")
    assert verdict["status"] == "fail" and verdict["data"]["verdict"] == "cache_stale"
    assert verdict["data"]["served_version"] == before and "cache invalidate" in verdict["summary"]

    invalidate(checks, "demo", "search")
    verdict = checks("recs", "probe", "--tenant", "demo", "--surface", "search", expect=0).by_check(
        "recs.served_vs_published")
    assert verdict["data"]["verdict"] == "consistent" and verdict["data"]["served_version"] == published


def test_rollback_after_a_concurrent_publish_is_a_conflict_and_changes_nothing(checks: Checks) -> None:
    """plan_rollback, then a publish, then apply: Conflict (exit code 3) and the manifest stays the publish's bytes."""
    target = Target.from_env(checks.stack.env)
    plan = plan_rollback(target, "demo", "home", previous=True, reason="loses the race")
    checks.stack.cli("publish", "--tenant", "demo", "--surface", "home")
    published = checks.manifest("demo", "home")
    audit_before = checks.list_keys("registry/audit/demo/home/")

    with pytest.raises(Conflict) as caught:
        apply_rollback(target, plan, execute=True)
    assert caught.value.exit_code == 3 and one_line(str(caught.value)) and "changed since the plan" in str(caught.value)
    assert checks.manifest("demo", "home") == published
    assert checks.list_keys("registry/audit/demo/home/") == audit_before
    checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=0)


def test_no_secret_reaches_the_output_of_the_commands_that_print_most(checks: Checks) -> None:
    """The API key and the S3 credentials never appear in what the most talkative commands print, in both forms."""
    commands = [
        ("health",), ("config", "show", "--tenant", "demo"), ("rules", "history", "--tenant", "demo"),
        ("recs", "probe", "--tenant", "demo", "--surface", "home"), ("timeline", "--tenant", "demo"),
        ("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--previous"),
        ("cache", "invalidate", "--tenant", "demo", "--targets", "popularity,config,rules"),
    ]
    assert checks.secrets, "the stack has no secret to leak: the test would prove nothing"
    for command in commands:
        for json_out in (True, False):
            run = checks(*command, json_out=json_out)
            assert run.stdout.strip(), f"recsys-checks {' '.join(command)} printed nothing"
            for value in checks.secrets.values():
                assert value not in run.stdout and value not in run.stderr


def test_rollback_with_invalidate_cache_makes_the_service_serve_it_now(checks: Checks) -> None:
    """--invalidate-cache invalidates the surface's popularity cache after the swap (audited): exit 0, served."""
    good = served_popularity(checks, "demo", "search")
    inject(checks, "bad-publish", "demo", "search")
    earlier = set(audit_records(checks, "demo", "search"))
    result = checks("manifest", "rollback", "--tenant", "demo", "--surface", "search", "--previous", "--execute",
                    "--invalidate-cache", expect=0).json
    assert result["status"] == "applied" and result["service"]["status"] == "ok"
    assert result["service"]["data"]["invalidated"] is True
    assert served_popularity(checks, "demo", "search") == good
    new = {k: r for k, r in audit_records(checks, "demo", "search").items() if k not in earlier}
    assert sorted(r["action"] for r in new.values()) == ["cache.invalidate", "manifest.rollback"]
