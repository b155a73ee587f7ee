"""Many processes roll back the same surface at the same moment: exactly one wins, the others change nothing and
exit with a conflict, and exactly one audit record says applied."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from recsys_checks.judge import auditlog
from recsys_checks.judge.registry import manifest
from recsys_checks.levers import audit
from recsys_checks.reach.store import TargetStores

WRITERS = 6
CHILD = r"""
import json, os, sys, time
from recsys_checks.levers import rollback
from recsys_checks.reach.settings import Target
from recsys_checks.core.errors import Conflict

target = Target(**json.loads(sys.argv[1]))
go, version = sys.argv[2], sys.argv[3]
plan = rollback.plan_rollback(target, "demo", "home", to=version, reason="race")
print("ready", flush=True)
while not os.path.exists(go):  # every racer has planned against the same manifest before any applies
    time.sleep(0.005)
try:
    print(rollback.apply_rollback(target, plan, execute=True, actor="racer").status)
except Conflict:
    print("conflict")
"""


@pytest.mark.slow
def test_concurrent_rollbacks_have_one_winner_and_one_record(registry, versions, tmp_path):
    """Six processes planned against the same manifest apply at once: one applied, the others conflict (or find the
    winner's version already in place), one applied record."""
    fields = json.dumps(dataclasses.asdict(registry.target))
    go = tmp_path / "go"
    targets = [versions.pop_day2_later, versions.pop_day2_earlier, versions.pop_day1_staging] * 2
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, fields, str(go), targets[i]], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(WRITERS)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        outcomes.append(out.strip())
    assert outcomes.count("applied") == 1, outcomes
    winner = targets[outcomes.index("applied")]
    # Every other writer changed nothing: a conflict, or a no-op when it asked for the version the winner installed.
    for target, outcome in zip(targets, outcomes, strict=True):
        assert outcome in ("applied", "conflict") or (outcome == "noop" and target == winner), outcomes
    current = manifest.parse_manifest(registry.read("registry/current/demo/home/manifest.json"))
    assert current.current["popularity"].endswith(f"/{winner}.json")
    records = auditlog.read_audit(registry.target, "demo", "home")
    applied = [r for r in records if r["state"] == "applied"]
    assert len(applied) == 1 and applied[0]["after"]["current"]["popularity"].endswith(f"/{winner}.json")
    with TargetStores(registry.target) as st:
        assert audit.pending(st, registry.target, "demo", "home") == []
