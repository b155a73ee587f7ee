"""kill -9 at the worst moments of a rollback, on both stores: no torn manifest, no lost audit record, and the next
run works (and completes the record a crash left half-written)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from datetime import UTC, datetime, timedelta

import crashkit
import pytest

from recsys_checks.judge import auditlog
from recsys_checks.judge.registry import manifest
from recsys_checks.levers import audit, rollback
from recsys_checks.reach.store import TargetStores

CHILD = r"""
import json
from recsys_checks.levers import rollback
from recsys_checks.reach.settings import Target

target = Target(**json.loads(sys.argv[1]))
point, version = sys.argv[2], sys.argv[3]
crashkit.arm(point)
plan = rollback.plan_rollback(target, "demo", "home", to=version, reason="crash drill")
rollback.apply_rollback(target, plan, execute=True, actor="crash-drill")
"""


def _killed_rollback(registry, point: str, version: str) -> None:
    fields = json.dumps(dataclasses.asdict(registry.target))
    proc = subprocess.run(crashkit.child_argv(CHILD, fields, point, version), capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


def _pending(registry) -> list[dict]:
    with TargetStores(registry.target) as st:
        return audit.pending(st, registry.target, "demo", "home")


@pytest.mark.slow
def test_a_kill_after_the_swap_leaves_an_intent_that_the_next_run_completes(registry, versions):
    """Killed between the swap and the record: the manifest is whole and moved, the intent is there; the next run
    completes it at once as applied (the change it announced is visible: it cannot be in flight any more)."""
    _killed_rollback(registry, "after-swap", versions.pop_day2_later)
    current = manifest.parse_manifest(registry.read("registry/current/demo/home/manifest.json"))
    assert current.current["popularity"].endswith(versions.pop_day2_later + ".json")
    assert auditlog.read_audit(registry.target, "demo", "home") == [] and len(_pending(registry)) == 1

    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert rollback.apply_rollback(registry.target, plan, execute=True).status == "noop"
    records = auditlog.read_audit(registry.target, "demo", "home")
    assert len(records) == 1 and records[0]["state"] == "applied" and records[0]["who"] == "crash-drill"
    assert records[0]["after"]["current"]["popularity"] == current.current["popularity"]
    assert _pending(registry) == []


@pytest.mark.slow
def test_a_kill_before_the_swap_changes_nothing_and_its_intent_is_settled_as_abandoned(registry, versions):
    """Killed after the intent, before the swap: the manifest is untouched; the next run applies with its own
    record, and the stale intent is settled as abandoned once it is old enough."""
    before = registry.read("registry/current/demo/home/manifest.json")
    _killed_rollback(registry, "before-swap", versions.pop_day2_later)
    assert registry.read("registry/current/demo/home/manifest.json") == before
    with TargetStores(registry.target) as st:
        _, etag = st.get(registry.target.manifest_uri("demo", "home"))
        judge = audit.judge_by_state(etag)
        assert audit.settle(st, registry.target, "demo", "home", judge) == []  # too young to judge: may be running
        assert len(audit.settle(st, registry.target, "demo", "home", judge,
                                now=datetime.now(UTC) + timedelta(minutes=5))) == 1
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert rollback.apply_rollback(registry.target, plan, execute=True).status == "applied"
    states = sorted(r["state"] for r in auditlog.read_audit(registry.target, "demo", "home"))
    assert states == ["abandoned", "applied"]
    assert _pending(registry) == []


def _intent(st, registry, plan, when, observed, result) -> str:
    uri, _ = audit.begin(st, registry.target, plan, tenant="demo", scope="home", now=when, actor="t", runbook=None,
                         before=None, after=None, expect={"observed": observed, "result": result})
    return uri


def test_an_intent_whose_result_a_later_action_started_from_is_applied_at_once(registry, versions):
    """The state moved on since (another rollback), but a later intent planned against this one's result: the change
    landed. Settled as applied at once, not unknown after a wait."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later, reason="first")
    now = datetime.now(UTC)
    with TargetStores(registry.target) as st:
        _intent(st, registry, plan, now, "etag-0", "etag-1")
        later = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day1_staging, reason="second")
        _intent(st, registry, later, now + timedelta(seconds=1), "etag-1", "etag-2")
        written = audit.settle(st, registry.target, "demo", "home", audit.judge_by_state("etag-2"), now=now)
    assert len(written) == 2  # the second's result is the state now; the first's is what the second started from
    states = sorted(r["state"] for r in auditlog.read_audit(registry.target, "demo", "home"))
    assert states == ["applied", "applied"]


def test_a_document_intent_the_service_log_shows_written_is_applied(registry, versions):
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later, reason="revert")
    now = datetime.now(UTC)
    with TargetStores(registry.target) as st:
        _intent(st, registry, plan, now, "v-bad", "v-good")
        quiet = audit.settle(st, registry.target, "demo", "home", audit.judge_by_state("v-other"), now=now)
        assert quiet == []  # nothing shows it landed, and it is young: it may still be running
        found = audit.settle(st, registry.target, "demo", "home", audit.judge_by_state("v-other", ["v-good"]), now=now)
    assert len(found) == 1 and auditlog.read_audit(registry.target, "demo", "home")[0]["state"] == "applied"


def test_twin_intents_the_state_cannot_tell_apart_settle_to_one_applied(registry, versions):
    """Two processes made the same change within one second (the same bytes, so the same resulting state); the
    compare-and-swap let one through. The state says "landed" for both, so the settle waits for the winner's own
    record and then abandons the other; never two applied records for one change."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later, reason="twin")
    now = datetime.now(UTC)
    judge = audit.judge_by_state("etag-1")
    with TargetStores(registry.target) as st:
        first = _intent(st, registry, plan, now, "etag-0", "etag-1")
        second = _intent(st, registry, plan, now + timedelta(microseconds=5), "etag-0", "etag-1")
        assert audit.settle(st, registry.target, "demo", "home", judge, now=now) == []  # the winner may be recording
        audit.complete(st, second, auditlog.load_record(st, second))  # the winner records itself
        written = audit.settle(st, registry.target, "demo", "home", judge, now=now)
        assert written == [auditlog.record_uri(first)]
    states = {r["intent"]: r["state"] for r in auditlog.read_audit(registry.target, "demo", "home")}
    assert states == {first: "abandoned", second: "applied"}


def test_twin_intents_nobody_recorded_settle_after_the_grace_to_one_applied(registry, versions):
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later, reason="twin")
    now = datetime.now(UTC)
    with TargetStores(registry.target) as st:
        first = _intent(st, registry, plan, now, "etag-0", "etag-1")
        second = _intent(st, registry, plan, now + timedelta(microseconds=5), "etag-0", "etag-1")
        written = audit.settle(st, registry.target, "demo", "home", audit.judge_by_state("etag-1"),
                               now=now + timedelta(minutes=5))
    assert len(written) == 2
    states = {r["intent"]: r["state"] for r in auditlog.read_audit(registry.target, "demo", "home")}
    assert states == {first: "applied", second: "abandoned"}


def test_an_intent_without_twins_that_the_state_shows_landed_is_applied_at_once(registry, versions):
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later, reason="alone")
    now = datetime.now(UTC)
    with TargetStores(registry.target) as st:
        _intent(st, registry, plan, now, "etag-0", "etag-1")
        _intent(st, registry, plan, now + timedelta(microseconds=5), "etag-0", "etag-2")  # a different change
        written = audit.settle(st, registry.target, "demo", "home", audit.judge_by_state("etag-1"), now=now)
    assert len(written) == 1
