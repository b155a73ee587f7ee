"""The verdict rule (recsys_checks.runbooks.verdict.decide) as a truth table over step outcomes, on a spec of each shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import specskit

from recsys_checks.core.results import CheckResult
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.remedy import Remedy
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.steps import fix
from recsys_checks.runbooks.verdict import VERDICTS, decide

OK, FAIL, UNREAD, ABSENT = "ok", "fail", "unread", "absent"


def _run(tmp_path: Path, runbook_id: str = "rollback-manifest") -> RunbookRun:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target, record_path=tmp_path / "record.json")


def _result(step: str, outcome: str) -> CheckResult | None:
    if outcome == ABSENT:
        return None
    if outcome == UNREAD:
        return CheckResult(step, "fail", f"{step} could not be read", unread=f"{step}: RECSYS_API_KEY is not set")
    return CheckResult(step, outcome, f"{step} {outcome}")


def _decide(tmp_path: Path, *, checks: str = OK, info: str = OK, verify: str = OK, cause: str | None = None,
            lever: str | None = "manifest-rollback", remedy: str | None = None):
    """rollback-manifest with its check steps, its info step and its verify steps in the given outcomes."""
    run = _run(tmp_path)
    roles = {"check": checks, "info": info, "verify": verify}
    for step in run.spec.steps:
        if step.role in roles and (r := _result(step.id, roles[step.role])) is not None:
            run.results[step.id] = r
    run.results["diagnose"] = (fix.diagnosis(run, f"found {cause}", cause=cause) if cause
                               else fix.diagnosis(run, "no known cause"))
    assert run.results["diagnose"].data["lever"] == (lever if cause else None)  # the table's row, not the test, says
    if remedy:
        run.results["fix"] = Remedy(remedy, lever, f"{remedy} {lever}")
    return decide(run.spec, run.results, None)


# (checks, info, verify, cause, lever, remedy) → (verdict, cause in the record)
TABLE = [
    # no cause named
    ((OK, OK, OK, None, None, "not-needed"), ("healthy", None)),
    ((UNREAD, OK, OK, None, None, "not-needed"), ("inconclusive", None)),
    ((OK, UNREAD, OK, None, None, "not-needed"), ("inconclusive", None)),
    ((ABSENT, OK, OK, None, None, "not-needed"), ("inconclusive", None)),
    ((FAIL, OK, OK, None, None, "not-needed"), ("action-required", "unexplained")),
    # verify steps judge a fix; with none applied they do not run and do not count
    ((OK, OK, UNREAD, None, None, "not-needed"), ("healthy", None)),
    ((OK, OK, ABSENT, None, None, "not-needed"), ("healthy", None)),
    ((OK, OK, FAIL, None, None, "not-needed"), ("healthy", None)),
    ((OK, FAIL, OK, None, None, "not-needed"), ("healthy", None)),  # an info step describes, it does not judge
    ((FAIL, UNREAD, OK, None, None, "not-needed"), ("inconclusive", None)),  # unread outranks unexplained
    ((OK, "warn", OK, None, None, "not-needed"), ("healthy", None)),
    # a cause with a lever
    ((FAIL, OK, FAIL, "empty_artifact", "manifest-rollback", "planned"), ("action-required", "empty_artifact")),
    ((FAIL, UNREAD, FAIL, "empty_artifact", "manifest-rollback", "planned"), ("action-required", "empty_artifact")),
    ((FAIL, OK, OK, "empty_artifact", "manifest-rollback", "applied"), ("mitigated", "empty_artifact")),
    ((FAIL, OK, FAIL, "empty_artifact", "manifest-rollback", "applied"), ("action-required", "empty_artifact")),
    ((FAIL, OK, ABSENT, "empty_artifact", "manifest-rollback", "applied"), ("action-required", "empty_artifact")),
    ((FAIL, OK, UNREAD, "empty_artifact", "manifest-rollback", "applied"), ("inconclusive", "empty_artifact")),
    ((FAIL, OK, OK, "empty_artifact", "manifest-rollback", "failed"), ("action-required", "empty_artifact")),
    ((FAIL, OK, OK, "empty_artifact", "manifest-rollback", None), ("action-required", "empty_artifact")),
    # the state moved since the diagnosis (another responder): this run changed nothing
    ((FAIL, OK, OK, "empty_artifact", "manifest-rollback", "moved"), ("healthy", None)),
    ((FAIL, OK, FAIL, "empty_artifact", "manifest-rollback", "moved"), ("action-required", "empty_artifact")),
    ((FAIL, OK, UNREAD, "empty_artifact", "manifest-rollback", "moved"), ("action-required", "empty_artifact")),
    ((FAIL, UNREAD, OK, "empty_artifact", "manifest-rollback", "moved"), ("inconclusive", "empty_artifact")),
    # a cause without a lever
    ((FAIL, OK, FAIL, "stale", None, "no-lever"), ("action-required", "stale")),
    ((FAIL, UNREAD, FAIL, "unknown_surface", None, "no-lever"), ("inconclusive", "unknown_surface")),
]


@pytest.mark.parametrize(("row", "want"), TABLE, ids=[f"{'-'.join(map(str, r))}" for r, _ in TABLE])
def test_the_verdict_table(tmp_path, row, want):
    checks, info, verify, cause, lever, remedy = row
    got = _decide(tmp_path, checks=checks, info=info, verify=verify, cause=cause, lever=lever, remedy=remedy)
    assert (got.verdict, got.cause) == want, got


def test_inconclusive_names_what_could_not_be_read_and_the_missing_variable(tmp_path):
    got = _decide(tmp_path, info=UNREAD)
    assert got.unread == [{"step": "history", "what": "history: RECSYS_API_KEY is not set"}]
    assert "RECSYS_API_KEY" in got.next_action and "could not read" in got.next_action


def test_unexplained_carries_the_failing_checks_and_read_only_commands(tmp_path):
    got = _decide(tmp_path, checks=FAIL)
    assert {e["step"] for e in got.evidence} == {"probe", "clients", "manifest-status"}
    assert "recsys-checks recs probe" in got.next_action and "--execute" not in got.next_action


def test_failed_when_a_step_raised_or_no_diagnosis(tmp_path):
    run = _run(tmp_path)
    assert decide(run.spec, run.results, None).verdict == "failed"
    assert decide(run.spec, run.results, {"step": "probe", "error": "boom"}).verdict == "failed"


def test_every_verdict_of_the_table_is_a_known_one():
    assert {want[0] for _, want in TABLE} | {"failed"} == set(VERDICTS)


def test_the_run_record_keeps_the_unread_steps_and_the_unexplained_evidence(tmp_path):
    run = _run(tmp_path)
    for step in run.spec.steps:
        if step.role in ("check", "verify"):
            run.results[step.id] = _result(step.id, OK)
    run.results["history"] = _result("history", UNREAD)
    run.results["diagnose"] = fix.diagnosis(run, "no known cause")
    record = run.run_record()
    assert record["verdict"] == "inconclusive" and record["unread"][0]["step"] == "history"
    run.results["history"] = _result("history", OK)
    run.results["manifest-status"] = _result("manifest-status", FAIL)
    record = run.run_record()
    assert (record["verdict"], record["cause"]) == ("action-required", "unexplained")
    assert record["detected"][0]["evidence"] == [{"step": "manifest-status", "summary": "manifest-status fail"}]


def test_verify_steps_do_not_run_without_an_applied_fix(tmp_path):
    run = _run(tmp_path)
    calls = []
    run.step("probe", lambda r: CheckResult("p", "ok", "served"), show=False)
    run.results["diagnose"] = fix.diagnosis(run, "no known cause")
    run.results["fix"] = Remedy("not-needed", None, "nothing to fix")
    run.step("verify-manifest", lambda r: calls.append(1) or CheckResult("v", "fail", "x"), show=False)
    assert calls == [] and "verify-manifest" not in run.results
    assert run.outcomes[-1].status == "not-run" and "nothing to verify" in run.outcomes[-1].summary
    run.results["fix"] = Remedy("applied", "manifest-rollback", "rolled back")
    run.step("verify-manifest", lambda r: calls.append(1) or CheckResult("v", "ok", "served"), show=False)
    assert calls == [1] and run.results["verify-manifest"].status == "ok"


def test_a_fix_is_bound_to_the_state_its_diagnosis_saw(tmp_path):
    """The plan must be made against the manifest the diagnosis read; another state is moved, unless a version was
    named (then the request is acted on); the probe's and the checks' document versions must agree for a revert."""
    from recsys_checks.core.results import Plan

    run = _run(tmp_path)
    run.results["manifest-status"] = CheckResult("manifest.status", "fail", "bad", {}, '"etag-a"')
    assert fix.moved_since(run, "manifest-rollback", {}, Plan("manifest.rollback", "m", "etag-a", [])) is None
    moved = fix.moved_since(run, "manifest-rollback", {}, Plan("manifest.rollback", "m", "etag-b", []))
    assert moved.status == "moved" and "not the current one" in moved.summary
    # a version the diagnosis chose is still bound to what it saw
    assert fix.moved_since(run, "manifest-rollback", {"to": "abc"}, Plan("manifest.rollback", "m", "etag-b", []))
    asked = RunbookRun("rollback-manifest", spec=run.spec, target=run.target, record_path=tmp_path / "r2.json", to_version="abc")
    asked.results["manifest-status"] = run.results["manifest-status"]
    assert fix.moved_since(asked, "manifest-rollback", {"to": "abc"}, Plan("manifest.rollback", "m", "etag-b", [])) is None
    run = _run(tmp_path, "rollback-config-rules")
    run.results["probe"] = CheckResult("recs.probe", "fail", "empty", {"rules_version": "v-bad"})
    run.results["config-rules"] = CheckResult("config_rules.show", "ok", "", {"documents": [
        {"kind": "rules", "version": "v-good"}]})
    # the checks read a newer document than the one the symptom came from
    assert fix.moved_since(run, "doc-revert", {"kind": "rules"}, Plan("rules.revert", "t/rules", "v-good", []))


def test_the_run_record_names_the_commands_to_look_further_with_the_runs_tenant_and_surface(tmp_path):
    """An unexplained finding points at read-only commands filled with the run's tenant and surface, never with
    an unfilled {tenant} or {surface}."""
    from placeholders import unfilled_in_record

    run = _run(tmp_path)
    for step in run.spec.steps:
        if step.role in ("check", "verify", "info"):
            run.results[step.id] = _result(step.id, OK)
    run.results["manifest-status"] = _result("manifest-status", FAIL)
    run.results["diagnose"] = fix.diagnosis(run, "no known cause")
    record = run.run_record()
    assert (record["verdict"], record["cause"]) == ("action-required", "unexplained")
    assert f"--tenant {run.tenant} --surface {run.surface}" in record["next_action"]
    assert not unfilled_in_record(record)
