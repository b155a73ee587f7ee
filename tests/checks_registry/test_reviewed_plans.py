"""What was reviewed is what runs (--plan-id), and a protected deployment needs its name back (--confirm)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from recsys_checks.cli import commands as cli
from recsys_checks.core.errors import BadInput, Conflict
from recsys_checks.levers import rollback as M

MANIFEST = "registry/current/demo/home/manifest.json"


def test_the_reviewed_plan_id_applies_and_a_stale_one_changes_nothing(file_registry, versions):
    """--plan-id of the reviewed dry run applies; after the world moved, the same id is a conflict (exit 3)."""
    reviewed = M.plan_rollback(file_registry.target, "demo", "home", to=versions.pop_day2_later)
    plan_id = reviewed.plan_hash[:12]
    other = M.plan_rollback(file_registry.target, "demo", "home", to=versions.pop_day2_earlier)
    M.apply_rollback(file_registry.target, other, execute=True)  # someone else moves the manifest first
    before = file_registry.read(MANIFEST)
    fresh = M.plan_rollback(file_registry.target, "demo", "home", to=versions.pop_day2_later)
    with pytest.raises(Conflict, match="reviewed"):
        M.apply_rollback(file_registry.target, fresh, execute=True, plan_id=plan_id)
    assert file_registry.read(MANIFEST) == before
    assert M.apply_rollback(file_registry.target, fresh, execute=True,
                            plan_id=fresh.plan_hash[:12]).status == "applied"


def test_a_malformed_plan_id_is_bad_input(file_registry, versions):
    """A plan id that is too short or not hex is refused before anything happens."""
    plan = M.plan_rollback(file_registry.target, "demo", "home", to=versions.pop_day2_later)
    for bad in ("abc", "zzzzzzzzzzzzzz"):
        with pytest.raises(BadInput):
            M.apply_rollback(file_registry.target, plan, execute=True, plan_id=bad)


def test_plans_and_records_name_the_deployment_and_it_is_part_of_the_plan_id(file_registry, versions):
    """RECSYS_DEPLOYMENT is in the plan, its id and the audit record: a plan for staging is not a plan for prod."""
    staging = replace(file_registry.target, deployment="staging")
    prod = replace(file_registry.target, deployment="prod")
    a = M.plan_rollback(staging, "demo", "home", to=versions.pop_day2_later)
    b = M.plan_rollback(prod, "demo", "home", to=versions.pop_day2_later)
    assert a.deployment == "staging" and a.plan_hash != b.plan_hash
    with pytest.raises(Conflict):
        M.apply_rollback(prod, b, execute=True, plan_id=a.plan_hash[:12])
    result = M.apply_rollback(staging, a, execute=True, plan_id=a.plan_hash)
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["deployment"] == "staging" and record["plan_hash"] == a.plan_hash


def test_a_protected_deployment_needs_its_name_confirmed(file_registry, versions):
    """On a protected deployment --execute needs --confirm <name>; a wrong or missing name changes nothing."""
    target = replace(file_registry.target, deployment="prod-eu", protected=True)
    plan = M.plan_rollback(target, "demo", "home", to=versions.pop_day2_later)
    before = file_registry.read(MANIFEST)
    assert M.apply_rollback(target, plan).status == "planned"  # a dry run needs no confirmation
    for confirm in (None, "prod-us"):
        with pytest.raises(BadInput, match="prod-eu"):
            M.apply_rollback(target, plan, execute=True, confirm=confirm)
    assert file_registry.read(MANIFEST) == before
    assert M.apply_rollback(target, plan, execute=True, confirm="prod-eu").status == "applied"


def test_the_cli_takes_plan_id_and_confirm(file_registry, versions, monkeypatch, capsys):
    """recsys-checks: --confirm missing on a protected deployment is exit 2; a stale --plan-id is exit 3."""
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", file_registry.target.manifest_template)
    monkeypatch.setenv("RECSYS_DEPLOYMENT", "prod-eu")
    monkeypatch.setenv("RECSYS_DEPLOYMENT_PROTECTED", "true")
    args = ["manifest", "rollback", "--tenant", "demo", "--surface", "home", "--to", versions.pop_day2_later]
    assert cli.main(args) == 0
    dry = capsys.readouterr().out
    assert "on deployment prod-eu" in dry and "--plan-id" in dry
    assert cli.main([*args, "--execute"]) == 2
    assert cli.main([*args, "--execute", "--confirm", "prod-eu", "--plan-id", "0" * 12]) == 3
    plan_id = dry.split("--plan-id ")[1].split()[0]
    assert cli.main([*args, "--execute", "--confirm", "prod-eu", "--plan-id", plan_id]) == 0


def test_hold_set_takes_plan_id_and_confirm_like_every_other_lever(file_registry, monkeypatch, capsys):
    """hold set --execute on a protected deployment: no --confirm is exit 2, a stale --plan-id exit 3, no marker
    written by either; the reviewed plan id with the name confirmed sets the hold."""
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", file_registry.target.manifest_template)
    monkeypatch.setenv("RECSYS_DEPLOYMENT", "prod-eu")
    monkeypatch.setenv("RECSYS_DEPLOYMENT_PROTECTED", "true")
    before = file_registry.snapshot()
    args = ["hold", "set", "--tenant", "demo", "--surface", "home", "--reason", "bad eval"]
    assert cli.main(args) == 0
    dry = capsys.readouterr().out
    assert cli.main([*args, "--execute"]) == 2
    assert cli.main([*args, "--execute", "--confirm", "prod-eu", "--plan-id", "0" * 12]) == 3
    assert file_registry.snapshot() == before
    plan_id = dry.split("--plan-id ")[1].split()[0]
    assert cli.main([*args, "--execute", "--confirm", "prod-eu", "--plan-id", plan_id]) == 0
    assert json.loads(file_registry.read("registry/current/demo/home/hold.json"))["held"] is True
