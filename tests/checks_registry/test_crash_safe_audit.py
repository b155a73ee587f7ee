"""kill -9 at the worst moments of a rollback, on both stores: no torn manifest, no lost audit record, and the next
run works (and completes the record a crash left half-written)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from recsys_checks import audit
from recsys_checks import manifest as M
from recsys_checks.store import TargetStores

CHILD = r"""
import json, os, signal, sys
from recsys_checks import manifest as M, store
from recsys_checks.config import Target

target = Target(**json.loads(sys.argv[1]))
point, version = sys.argv[2], sys.argv[3]
put = store.TargetStores.put

def crashing_put(self, uri, data, **kwargs):
    if uri.endswith("/manifest.json") and point == "before-swap":
        os.kill(os.getpid(), signal.SIGKILL)
    etag = put(self, uri, data, **kwargs)
    if uri.endswith("/manifest.json") and point == "after-swap":
        os.kill(os.getpid(), signal.SIGKILL)
    return etag

store.TargetStores.put = crashing_put
plan = M.plan_rollback(target, "demo", "home", to=version, reason="crash drill")
M.apply_rollback(target, plan, execute=True, actor="crash-drill")
"""


def _killed_rollback(registry, point: str, version: str) -> None:
    fields = json.dumps(dataclasses.asdict(registry.target))
    proc = subprocess.run([sys.executable, "-c", CHILD, fields, point, version], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


def _pending(registry) -> list[dict]:
    with TargetStores(registry.target) as st:
        return audit.pending(st, registry.target, "demo", "home")


@pytest.mark.slow
def test_a_kill_after_the_swap_leaves_an_intent_that_the_next_run_completes(registry, versions):
    """Killed between the swap and the record: the manifest is whole and moved, the intent is there; a run at
    once leaves it (it could be another run's, in flight); a later run of the same rollback completes it."""
    _killed_rollback(registry, "after-swap", versions.pop_day2_later)
    current = M.parse_manifest(registry.read("registry/current/demo/home/manifest.json"))
    assert current.current["popularity"].endswith(versions.pop_day2_later + ".json")
    assert M.read_audit(registry.target, "demo", "home") == [] and len(_pending(registry)) == 1

    plan = M.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert M.apply_rollback(registry.target, plan, execute=True).status == "noop"
    assert len(_pending(registry)) == 1
    later = datetime.now(UTC) + audit.SETTLE_GRACE + timedelta(seconds=5)
    again = M.apply_rollback(registry.target, plan, execute=True, now=later)
    assert again.status == "noop"
    records = M.read_audit(registry.target, "demo", "home")
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
    plan = M.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert M.apply_rollback(registry.target, plan, execute=True).status == "applied"
    states = sorted(r["state"] for r in M.read_audit(registry.target, "demo", "home"))
    assert states == ["abandoned", "applied"]
    assert _pending(registry) == []
