"""The hold lever on both stores: set, clear and status, dry-run first, compare-and-swap, audited, idempotent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recsys_checks.core.errors import BadInput, Conflict
from recsys_checks.judge.registry import hold as registry_hold
from recsys_checks.judge.registry import manifest as M
from recsys_checks.levers import hold as levers_hold
from recsys_checks.reach.settings import Target

MARKER = "registry/current/demo/home/hold.json"
AUDIT = "registry/audit/demo/home/"
SET_AT = datetime(2026, 1, 4, 9, 0, tzinfo=UTC)
CLEAR_AT = datetime(2026, 1, 4, 10, 0, tzinfo=UTC)


def _audits(registry) -> list[str]:
    return sorted(k for k in registry.snapshot() if k.startswith(AUDIT) and k.endswith(".json"))


def _set(registry, reason="joins at 40 %", when=SET_AT):
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=True, reason=reason)
    return levers_hold.apply_hold(registry.target, plan, execute=True, actor="alice", runbook="hold-changes", now=when)


def test_the_marker_sits_beside_the_manifest(registry):
    """hold.json in the manifest's folder, derived from the manifest template."""
    assert registry_hold.hold_uri(registry.target, "demo", "home") == registry.uri(MARKER)


def test_status_is_ok_without_a_marker(registry):
    """No marker: not held, status ok (exit 0)."""
    res = registry_hold.check_hold(registry.target, "demo", "home")
    assert res.status == "ok" and res.data["held"] is False and res.state is None


def test_set_is_a_dry_run_unless_executed(registry):
    """Planning and applying without execute write nothing."""
    before = registry.snapshot()
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=True, reason="SRM in exp-7")
    res = levers_hold.apply_hold(registry.target, plan)
    assert res.status == "planned" and "dry-run" in res.summary
    assert plan.changes == [{"what": "hold of demo/home", "before": "not held", "after": "held"}]
    assert registry.snapshot() == before


def test_set_writes_the_marker_and_one_audit_record_and_status_fails(registry):
    """Executed: marker held with who/why/when, one audit record, status fails (exit 1) naming the reason."""
    res = _set(registry)
    assert res.status == "applied" and res.verification.status == "ok"
    marker = json.loads(registry.read(MARKER))
    assert marker | {"plan_hash": None} == {"v": 1, "tenant": "demo", "surface": "home", "held": True,
                                            "reason": "joins at 40 %", "by": "alice", "at": "2026-01-04T09:00:00Z",
                                            "plan_hash": None}
    audits = _audits(registry)
    assert len(audits) == 1
    record = json.loads(registry.read(audits[0]))
    assert record["action"] == "hold.set" and record["who"] == "alice" and record["why"] == "joins at 40 %"
    assert record["runbook"] == "hold-changes" and record["after"]["marker"]["held"] is True
    status = registry_hold.check_hold(registry.target, "demo", "home")
    assert status.status == "fail" and status.data["held"] is True and "joins at 40 %" in status.summary


def test_setting_twice_is_a_noop(registry):
    """A second set changes nothing and writes no second audit record."""
    _set(registry)
    snap = registry.snapshot()
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=True, reason="again")
    assert plan.noop
    assert levers_hold.apply_hold(registry.target, plan, execute=True).status == "noop"
    assert registry.snapshot() == snap


def test_clear_keeps_the_marker_as_cleared_and_audits(registry):
    """Clearing rewrites the marker with held false and the previous hold; nothing is deleted; status ok."""
    _set(registry)
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=False, reason="joins back at 99 %")
    res = levers_hold.apply_hold(registry.target, plan, execute=True, actor="bob", now=CLEAR_AT)
    assert res.status == "applied" and res.verification.status == "ok"
    marker = json.loads(registry.read(MARKER))
    assert marker["held"] is False and marker["by"] == "bob" and marker["reason"] == "joins back at 99 %"
    assert marker["previous"] == {"reason": "joins at 40 %", "by": "alice", "at": "2026-01-04T09:00:00Z"}
    assert [json.loads(registry.read(a))["action"] for a in _audits(registry)] == ["hold.set", "hold.clear"]
    assert registry_hold.check_hold(registry.target, "demo", "home").status == "ok"


def test_clearing_what_is_not_held_is_a_noop_and_writes_nothing(registry):
    """No marker and clear: nothing to do, no object created."""
    before = registry.snapshot()
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=False)
    assert plan.noop and levers_hold.apply_hold(registry.target, plan, execute=True).status == "noop"
    assert registry.snapshot() == before


def test_a_marker_changed_since_the_plan_is_a_conflict(registry):
    """Compare-and-swap: the marker was written after our plan was made, so the plan is refused; nothing written."""
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=True, reason="mine")
    registry.write(MARKER, json.dumps({"v": 1, "tenant": "demo", "surface": "home", "held": False}).encode())
    snap = registry.snapshot()
    with pytest.raises(Conflict):
        levers_hold.apply_hold(registry.target, plan, execute=True)
    assert registry.snapshot() == snap


def test_an_unreadable_marker_counts_as_held(registry):
    """Fail closed: a broken marker makes status fail, and set or clear rewrites it."""
    registry.write(MARKER, b"{broken")
    res = registry_hold.check_hold(registry.target, "demo", "home")
    assert res.status == "fail" and res.data["held"] is True and "not valid JSON" in res.summary
    plan = levers_hold.plan_hold(registry.target, "demo", "home", held=False, reason="fix marker")
    assert not plan.noop
    assert levers_hold.apply_hold(registry.target, plan, execute=True).status == "applied"
    assert registry_hold.check_hold(registry.target, "demo", "home").status == "ok"


def test_a_marker_nested_past_the_parser_counts_as_held_not_an_internal_error(registry):
    """A marker of 50,000 nested arrays is an unreadable marker (held), never a RecursionError."""
    registry.write(MARKER, b"[" * 50_000)
    res = registry_hold.check_hold(registry.target, "demo", "home")
    assert res.status == "fail" and res.data["held"] is True and "nested too deeply" in res.summary


def test_a_template_without_manifest_json_cannot_place_a_hold(tmp_path):
    """The marker location is derived; when it cannot be, the action refuses before anything."""
    target = Target(manifest_template=tmp_path.as_uri() + "/{tenant}/{surface}.json")
    with pytest.raises(BadInput):
        levers_hold.plan_hold(target, "demo", "home", held=True)


def test_manifest_status_shows_a_held_surface_as_held_not_stale(registry):
    """27 h old and held: condition held, a warning (exit 0), the reason in the summary."""
    _set(registry)
    res = M.check_manifest(registry.target, "demo", "home", now=datetime(2026, 1, 5, 4, 30, tzinfo=UTC))
    assert res.status == "warn" and res.data["condition"] == "held"
    assert "held" in res.summary and "joins at 40 %" in res.summary and "stale, as expected" in res.summary
    _clear = levers_hold.plan_hold(registry.target, "demo", "home", held=False)
    levers_hold.apply_hold(registry.target, _clear, execute=True)
    res = M.check_manifest(registry.target, "demo", "home", now=datetime(2026, 1, 5, 4, 30, tzinfo=UTC))
    assert res.data["condition"] == "stale" and res.status == "fail"


def test_freshness_shows_a_held_surface_as_held(registry):
    """Fleet freshness lists a held surface as held, a warning rather than a stale failure."""
    from recsys_checks.judge.registry.freshness import check_freshness

    _set(registry)
    res = check_freshness(registry.target, tenant="demo", now=datetime(2026, 1, 5, 4, 30, tzinfo=UTC))
    row = next(r for r in res.data["rows"] if r["surface"] == "home")
    assert row["condition"] == "held" and res.data["counts"]["held"] == 1
    assert "held" in res.summary and "demo/home" in res.summary


def test_one_call_set_and_clear_for_notebooks(file_registry):
    """set_hold / clear_hold plan and apply in one call, dry-run unless execute."""
    t = file_registry.target
    assert levers_hold.set_hold(t, "demo", "home", "why").status == "planned"
    assert registry_hold.check_hold(t, "demo", "home").status == "ok"
    assert levers_hold.set_hold(t, "demo", "home", "why", execute=True, runbook="hold-changes").status == "applied"
    assert registry_hold.check_hold(t, "demo", "home").status == "fail"
    assert levers_hold.clear_hold(t, "demo", "home", "done", execute=True).status == "applied"
    assert registry_hold.check_hold(t, "demo", "home").status == "ok"
