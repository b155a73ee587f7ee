"""Every runbook's drill against a fresh local stack, through `recsys-checks runbook run`, as CI proves them.

For each drill (fault × store): a healthy stack is ``healthy`` and nothing changes; with the fault injected a dry
run is ``action-required`` with the right cause and nothing changes; ``--execute`` ends as the drill says
(``mitigated``, with audit records, or ``action-required`` where the fix is out of reach); and a run after a
mitigation is ``healthy`` and changes nothing.

Every drill starts from the same stack (``fresh_stack`` resets it to what ``up`` seeded, proven equal to a new one by
tests/stack_cli/test_reset.py), so the healthy phase of a runbook with the same parameters on the same store is one
observation: it runs once per test process, and every drill of that runbook, store and parameters shows its outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import specskit
from checks_integration.checkskit import Checks
from placeholders import unfilled, unfilled_in_record

from handbook_site import drills

SPECS = specskit.all_specs()
CASES = [
    pytest.param(spec, drill, store, id=f"{spec.id}-{drill.fault}-{store}")
    for spec in SPECS for drill in spec.drills for store in drill.stores
]
# (runbook, store, parameters) -> the healthy phase's outcome, observed once in this test process (see the module).
_HEALTHY: dict[tuple[str, str, tuple[tuple[str, str], ...]], drills.Outcome] = {}


def _assert_filled(outcome: drills.Outcome) -> None:
    """No unfilled {tenant} or {surface} in the run record, in what the executed notebook printed, or on screen."""
    record = outcome.record
    assert not unfilled_in_record(record), unfilled_in_record(record)
    templates = [v for v in (record.get("parameters") or {}).values() if isinstance(v, str)]
    templates += [v for v in (record.get("target") or {}).values() if isinstance(v, str)]
    notebook = json.loads((outcome.out / f"{record['runbook']}.ipynb").read_text())
    printed = [str(o.get("text") or o.get("data", {}).get("text/plain") or "")
               for cell in notebook["cells"] for o in cell.get("outputs", [])]
    for text in (*printed, outcome.stdout, outcome.stderr):
        assert not unfilled(text, templates), unfilled(text, templates)


def _state(checks: Checks) -> dict:
    """The store's objects and the tenant's admin documents (or why they cannot be read: a broken admin database)."""
    try:
        admin = checks.admin_state("demo")
    except AssertionError as exc:
        admin = {"unreadable": str(exc).split("request_id")[0]}
    return {"store": checks.store_snapshot(), "admin": admin}


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize(("spec", "drill", "store"), CASES)
def test_drill(spec, drill, store, tmp_path: Path, fresh_stack) -> None:
    """Healthy → fault (dry run, nothing changed) → execute (as the drill says) → healthy again, nothing changed.

    A drill that passes writes its result to .drills/, which the runbook page shows as its verified status.
    """
    drills.forget_result(spec.id, drill.fault, store)
    outcomes: list[drills.Outcome] = []
    with fresh_stack(store) as stack:
        checks = Checks(stack)
        env = drills.client_env(stack.env)
        params = drills.drill_params(drill, stack.root)
        secrets = [v for k, v in stack.env.items() if k in ("RECSYS_API_KEY", "RECSYS_ARTIFACT_S3_SECRET_KEY") and v]

        def run(phase: str, execute: bool) -> drills.Outcome:
            outcome = drills.run_runbook(spec.id, params, env, tmp_path / phase, execute=execute, phase=phase)
            for path in (outcome.out / f"{spec.id}.ipynb", outcome.out / f"{spec.id}.result.json"):
                assert path.exists(), f"{path} missing\n{outcome.describe()}"
                text = path.read_text()
                assert not any(s in text for s in secrets), f"a secret reached {path}"
            assert not any(s in outcome.stdout + outcome.stderr for s in secrets)
            _assert_filled(outcome)
            outcomes.append(outcome)
            return outcome

        healthy_key = (spec.id, store, tuple(sorted(params.items())))
        if healthy_key in _HEALTHY:
            outcomes.append(_HEALTHY[healthy_key])
        else:
            before = _state(checks)
            healthy = run("healthy", execute=False)
            assert (healthy.exit_code, healthy.verdict) == (0, "healthy"), healthy.describe()
            assert _state(checks) == before, "a healthy run changed the stack"
            _HEALTHY[healthy_key] = healthy

        drills.inject(stack.root, drill.fault)
        broken = _state(checks)
        dry = run("dry-run", execute=False)
        assert drills.matches(dry, drill.dry_run.verdict, drill.dry_run.cause), dry.describe()
        assert dry.exit_code == 1
        assert _state(checks) == broken, "a dry run changed the stack"

        fixed = run("execute", execute=True)
        assert drills.matches(fixed, drill.execute.verdict, drill.execute.cause), fixed.describe()
        if drill.execute.verdict == "mitigated":
            assert fixed.exit_code == 0
            changed = fixed.record["changed"]
            assert changed, "a mitigation that changed nothing"
            for change in changed:
                if change["action"] != "command":
                    assert change["audit"], f"no audit record for {change}"
        else:
            assert fixed.exit_code == 1

        if drill.rerun is not None:
            settled = _state(checks)
            again = run("rerun", execute=False)
            assert drills.matches(again, drill.rerun.verdict, drill.rerun.cause), again.describe()
            assert _state(checks) == settled, "a run after the fix changed the stack"

    drills.write_result(spec.id, drill.fault, store, outcomes)
