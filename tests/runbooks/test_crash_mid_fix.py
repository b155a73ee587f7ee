"""A runbook's kernel killed at each point of its fix, then the runbook run again (no crash).

Points (tests/crashkit.py): before the intent is written, after the intent (before the manifest swap), after the
swap (before the record and the cache invalidation), after the invalidation (before its record). After the re-run the surface is on
the version before the bad one and serves, and every change that happened has an ``applied`` record: no intent is
left pending and none is settled ``unknown``.
"""

from __future__ import annotations

import json

import crashkit
import pytest
from checks_integration.checkskit import Checks

from handbook_site import drills
from recsys_checks.judge import auditlog
from recsys_checks.levers import audit
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import TargetStores

POINTS = crashkit.POINTS


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_a_fix_killed_at_any_point_is_finished_by_the_next_run(point, tmp_path, fresh_stack):
    with fresh_stack("file") as stack:
        checks = Checks(stack)
        env = drills.client_env(stack.env)
        good = json.loads(checks.read_object("registry/current/demo/home/manifest.json"))["current"]
        drills.inject(stack.root, "bad-publish")
        params = {"tenant": "demo", "surface": "home"}
        crashed = crashkit.hook_env(env, point)
        first = drills.run_runbook("rollback-manifest", params, crashed, tmp_path / "crashed", execute=True,
                                   phase="crashed")
        assert first.verdict != "mitigated", first.describe()  # the kernel died mid-fix

        # The same runbook finishes what the killed run started (the cache invalidation after the swap), alone.
        again = drills.run_runbook("rollback-manifest", params, env, tmp_path / "again", execute=True, phase="again")
        assert again.verdict in ("mitigated", "healthy"), again.describe()
        if point == "after-swap":
            assert again.cause in ("cache_stale", None), again.describe()
        now = json.loads(checks.read_object("registry/current/demo/home/manifest.json"))["current"]
        assert now["popularity"] == good["popularity"]

        target = Target.from_env(stack.env)
        with TargetStores(target) as st:
            assert audit.pending(st, target, "demo", "home") == []
        records = auditlog.read(target, "demo", "home")
        assert records and all(r.get("state") in ("applied", "abandoned") for r in records), records
        rollbacks = [r for r in records if r.get("action") == "manifest.rollback" and r.get("state") == "applied"]
        assert len(rollbacks) == 1, records
