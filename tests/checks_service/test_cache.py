"""cache: plan and apply invalidation of the service's caches, dry-run by default."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.levers.cache import apply_invalidate, parse_targets, plan_invalidate

from .conftest import API_KEY, POP_V2


def test_targets_are_validated_deduplicated_and_ordered():
    """Comma text or a list; unknown or empty → BadInput naming the valid targets."""
    assert parse_targets("rules, popularity,rules") == ["popularity", "rules"]
    with pytest.raises(BadInput, match="popularity, config, rules"):
        parse_targets(["cooc"])
    with pytest.raises(BadInput, match="no cache targets"):
        parse_targets("")


def test_dry_run_sends_nothing(service, target, client):
    """Without execute: planned, no request, served state unchanged."""
    service.published["home"] = copy.deepcopy(POP_V2)
    before = service.snapshot()
    plan = plan_invalidate(target, "demo", "popularity", surface="home")
    result = apply_invalidate(target, plan, client=client)
    assert result.status == "planned" and "dry-run" in result.summary
    assert service.requests == [] and service.snapshot() == before


def test_execute_invalidates_the_planned_caches_for_the_surface(service, target, client):
    """Execute: one POST with targets and surface; the service reloads popularity; audited by the service."""
    service.published["home"] = copy.deepcopy(POP_V2)
    plan = plan_invalidate(target, "demo", ["popularity", "config"], surface="home", reason="stale cache")
    result = apply_invalidate(target, plan, execute=True, client=client)
    assert result.status == "applied" and "popularity: 1" in result.summary
    (post,) = service.mutating_requests()
    assert json.loads(post.content) == {"targets": ["popularity", "config"], "surface": "home"}
    assert service.served["home"] == POP_V2
    assert service.audit_log[-1]["action"] == "cache.invalidate"
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["service_request_id"] == post.headers["X-Request-Id"] and record["surface"] == "home"


def test_invalidating_twice_is_harmless(service, target, client):
    """Idempotent: a second apply succeeds and changes nothing more."""
    plan = plan_invalidate(target, "demo", "rules")
    apply_invalidate(target, plan, execute=True, client=client)
    state = copy.deepcopy((service.served, service.cached))  # a snapshot, not the live objects
    assert apply_invalidate(target, plan, execute=True, client=client).status == "applied"
    assert (service.served, service.cached) == state
    assert len(service.mutating_requests()) == 2, "the second apply did not reach the service"


def test_plan_without_surface_covers_all_surfaces_and_hides_the_key(target):
    """No surface → tenant-wide; the plan carries no secret."""
    plan = plan_invalidate(target, "demo", "popularity")
    assert plan.target == "demo" and "all surfaces" in plan.changes[0]["what"]
    assert API_KEY not in json.dumps(plan.to_dict())


def test_invalidating_twice_in_one_second_leaves_two_audit_records(service, target, client):
    """Each applied invalidation gets its own audit object, even within the same second."""
    from datetime import UTC, datetime

    plan = plan_invalidate(target, "demo", ["popularity"], surface="home")
    first = apply_invalidate(target, plan, execute=True, client=client, now=datetime(2026, 1, 2, 3, 4, 5, 1000, UTC))
    second = apply_invalidate(target, plan, execute=True, client=client, now=datetime(2026, 1, 2, 3, 4, 5, 2000, UTC))
    assert first.audit and second.audit and first.audit != second.audit
    assert Path(first.audit.removeprefix("file://")).exists() and Path(second.audit.removeprefix("file://")).exists()
