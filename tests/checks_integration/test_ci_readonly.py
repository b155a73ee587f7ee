"""Every read-only command on a healthy stack, dry-runs that change nothing, and bad input refused with exit 2."""

from __future__ import annotations

import re
import socket

import pytest
from checks_integration.checkskit import Checks, one_line

pytestmark = pytest.mark.stack

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SURFACES = [("demo", "home"), ("demo", "search"), ("acme", "home"), ("acme", "search")]


def test_health_of_a_running_stack_is_ok(checks: Checks) -> None:
    """`health` exits 0: live, ready, every dependency ok."""
    result = checks("health", expect=0).json
    assert result["check"] == "health" and result["status"] == "ok"
    assert result["data"]["live"]["status_code"] == 200 and result["data"]["ready"]["status_code"] == 200
    assert result["data"]["detail"]["checks"] and all(c["status"] == "ok" for c in result["data"]["detail"]["checks"])


def test_manifest_status_of_every_seeded_surface_is_healthy(checks: Checks) -> None:
    """`manifest status` exits 0 with condition healthy and valid popularity and cooc for each surface."""
    for tenant, surface in SURFACES:
        result = checks("manifest", "status", "--tenant", tenant, "--surface", surface, expect=0).json
        assert result["status"] == "ok" and result["data"]["condition"] == "healthy"
        kinds = {a["kind"]: a for a in result["data"]["artifacts"]}
        assert {"popularity", "cooc"} <= set(kinds) and all(a["status"] == "ok" for a in kinds.values())
        assert kinds["popularity"]["items"] > 0 and result["state"]


def test_manifest_history_lists_the_seeded_versions_with_exactly_one_current(checks: Checks) -> None:
    """`manifest history --kind popularity` exits 0 with at least 5 versions, exactly one current, the others targets."""
    result = checks("manifest", "history", "--tenant", "demo", "--surface", "home", "--kind", "popularity",
                    expect=0).json
    versions = result["data"]["versions"]
    assert len(versions) >= 5 and all(v["kind"] == "popularity" for v in versions)
    assert sum(1 for v in versions if v["current"]) == 1
    assert all(v["valid"] and HEX64.match(v["version"]) for v in versions)
    assert all(v["rollback_target"] for v in versions if not v["current"])


def test_freshness_of_the_fleet_is_healthy(checks: Checks) -> None:
    """`freshness` exits 0 with one healthy row per seeded surface."""
    result = checks("freshness", expect=0).json
    rows = {(r["tenant"], r["surface"]): r["condition"] for r in result["data"]["rows"]}
    assert rows == {pair: "healthy" for pair in SURFACES}
    assert checks("freshness", "--tenant", "acme", expect=0).json["data"]["counts"]["healthy"] == 2


def test_recs_probe_returns_items_and_a_consistent_verdict(checks: Checks) -> None:
    """`recs probe` exits 0: items, 64-hex config/rules versions, served_vs_published consistent with the manifest."""
    run = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=0)
    probe, svp = run.by_check("recs.probe"), run.by_check("recs.served_vs_published")
    assert probe["status"] == "ok" and probe["data"]["items"]
    assert HEX64.match(probe["data"]["config_version"]) and HEX64.match(probe["data"]["rules_version"])
    status = checks("manifest", "status", "--tenant", "demo", "--surface", "home", expect=0).json
    served_popularity = {a["kind"]: a["version"] for a in status["data"]["artifacts"]}["popularity"]
    assert svp["data"]["verdict"] == "consistent" and svp["data"]["served_version"] == served_popularity


def test_config_and_rules_show_and_history_exit_0(checks: Checks) -> None:
    """`config|rules show|history` exit 0; shown versions match the probe's and the history ends at the current one."""
    probe = checks("recs", "probe", "--tenant", "demo", "--surface", "home", expect=0).by_check("recs.probe")
    for kind in ("config", "rules"):
        shown = checks(kind, "show", "--tenant", "demo", expect=0).json
        assert shown["status"] == "ok" and shown["data"]["version"] == probe["data"][f"{kind}_version"]
        assert shown["data"]["document"]
        history = checks(kind, "history", "--tenant", "demo", expect=0).json
        changes = history["data"]["changes"]
        assert changes and history["data"]["version"] == shown["data"]["version"]
        assert changes[0]["after"] == shown["data"]["version"][:12]


def test_timeline_shows_publishes_and_admin_changes_from_every_source(checks: Checks) -> None:
    """`timeline` exits 0 with every source ok, publishes of both surfaces and the seeded config changes."""
    result = checks("timeline", "--tenant", "demo", expect=0).json
    assert result["status"] == "ok" and set(result["data"]["sources"].values()) == {"ok"}
    events = result["data"]["events"]
    assert {e["surface"] for e in events if e["kind"] == "publish"} == {"home", "search"}
    assert any(e["kind"] == "config" for e in events) and any(e["kind"] == "rules" for e in events)
    one = checks("timeline", "--tenant", "demo", "--surface", "search", "--since", "30d", expect=0).json
    assert {e["surface"] for e in one["data"]["events"] if e["kind"] == "publish"} == {"search"}


DRY_RUNS = [
    ("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--previous", "--reason", "dry-run test"),
    ("config", "revert", "--tenant", "demo", "--previous"),
    ("rules", "revert", "--tenant", "demo", "--previous"),
    ("cache", "invalidate", "--tenant", "demo", "--targets", "popularity,config,rules"),
    ("cache", "invalidate", "--tenant", "demo", "--surface", "home", "--targets", "popularity"),
]


def test_dry_runs_change_neither_the_store_nor_the_admin_state(checks: Checks) -> None:
    """Each action without --execute exits 0 with status planned and leaves store objects and admin state as they were."""
    store_before, admin_before = checks.store_snapshot(), checks.admin_state("demo")
    manifest_before = checks.manifest("demo", "home")
    for args in DRY_RUNS:
        result = checks(*args, expect=0).json
        assert result["status"] == "planned", result
        assert result["plan"]["changes"] and result["audit"] is None and result["verification"] is None
    assert checks.store_snapshot() == store_before
    assert checks.admin_state("demo") == admin_before
    assert checks.manifest("demo", "home") == manifest_before


def test_dry_run_rollback_plans_the_previous_version(checks: Checks) -> None:
    """The planned rollback moves popularity from the current version to the one before it in the history."""
    history = checks("manifest", "history", "--tenant", "demo", "--surface", "home", "--kind", "popularity",
                     expect=0).json["data"]["versions"]
    plan = checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--kind", "popularity",
                  "--previous", expect=0).json["plan"]
    assert len(plan["changes"]) == 1
    change = plan["changes"][0]
    assert change["before_version"] == history[0]["version"] and change["after_version"] == history[1]["version"]


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("manifest", "status", "--tenant", "../x", "--surface", "home"),
    ("manifest", "rollback", "--tenant", "../x", "--surface", "home", "--previous", "--execute"),
    ("config", "revert", "--tenant", "../x", "--previous", "--execute"),
    ("cache", "invalidate", "--tenant", "demo", "--surface", "a/b", "--targets", "popularity", "--execute"),
])
def test_unsafe_tenant_or_surface_exits_2_and_touches_nothing(checks: Checks, args: tuple[str, ...]) -> None:
    """A path-like tenant or surface is refused (exit 2, an error naming it) before anything is read or written."""
    store_before, admin_before = checks.store_snapshot(), checks.admin_state("demo")
    run = checks(*args, expect=2)
    assert run.stdout == "" and "unsafe" in run.stderr
    assert checks.store_snapshot() == store_before and checks.admin_state("demo") == admin_before


def test_rollback_to_an_unknown_version_exits_2_naming_how_to_list_versions(checks: Checks) -> None:
    """`--to deadbeefdeadbeef` is not recorded: exit 2, one line pointing at `manifest history`, nothing changed."""
    before = checks.manifest("demo", "home")
    run = checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--to", "deadbeefdeadbeef",
                 "--execute", expect=2)
    assert one_line(run.stderr) and "deadbeefdeadbeef" in run.stderr
    assert "recsys-checks manifest history --tenant demo --surface home" in run.stderr
    assert checks.manifest("demo", "home") == before


def test_revert_to_an_unknown_version_exits_2(checks: Checks) -> None:
    """`config revert --to` a version the audit log never saw: exit 2 naming `config history`."""
    run = checks("config", "revert", "--tenant", "demo", "--to", "deadbeefdeadbeef", "--execute", expect=2)
    assert one_line(run.stderr) and "config history --tenant demo" in run.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_service_port_fails_health_and_config_show(checks: Checks) -> None:
    """RECSYS_BASE_URL at a closed port: every command exits 2 (could not look); health still prints its result."""
    url = f"http://127.0.0.1:{_closed_port()}"
    health = checks("health", RECSYS_BASE_URL=url, expect=2).json
    assert health["status"] == "fail" and "RECSYS_BASE_URL" in health["summary"]
    shown = checks("config", "show", "--tenant", "demo", RECSYS_BASE_URL=url, expect=2)
    assert one_line(shown.stderr) and "RECSYS_BASE_URL" in shown.stderr
    revert = checks("config", "revert", "--tenant", "demo", "--previous", RECSYS_BASE_URL=url, expect=2)
    assert one_line(revert.stderr) and "RECSYS_BASE_URL" in revert.stderr


@pytest.mark.parametrize("template", [
    "http://example.invalid/{tenant}/{surface}/manifest.json",
    "s3://recsys-artifacts/registry/current/{tenant}/manifest.json",
])
def test_a_malformed_manifest_template_exits_2(checks: Checks, template: str) -> None:
    """A template that is not file:// or s3://, or lacks {surface}: exit 2 with one line naming the template."""
    for args in (("manifest", "status", "--tenant", "demo", "--surface", "home"), ("freshness",)):
        run = checks(*args, RECSYS_ARTIFACT_MANIFEST_TEMPLATE=template, expect=2)
        assert run.stdout == "" and one_line(run.stderr) and "template" in run.stderr


def test_no_secret_reached_any_output(checks: Checks) -> None:
    """Across every run of this module the API key and S3 credentials never appeared on stdout or stderr."""
    assert len(checks.runs) >= 20
    secrets = checks.secrets
    assert "RECSYS_API_KEY" in secrets and (checks.store == "file" or "RECSYS_ARTIFACT_S3_SECRET_KEY" in secrets)
    for run in checks.runs:
        for value in secrets.values():
            assert value not in run.stdout and value not in run.stderr
