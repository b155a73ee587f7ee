"""Found by the generated incidents: a runbook whose admin API answers 503 on a healthy surface said
``action-required`` (cause ``unexplained``) with an unfilled ``{tenant}`` in its advice. A document the service did not
give is unread (``inconclusive``), and the advice names the tenant."""

from __future__ import annotations

from pathlib import Path

import pytest
import specskit

from recsys_checks.core.results import CheckResult
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.steps import fix, serving


def _run(tmp_path: Path, runbook_id: str = "empty-recs") -> RunbookRun:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9", "RECSYS_API_KEY": "k",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    return RunbookRun(runbook_id, spec=specskit.spec(runbook_id), target=target, record_path=tmp_path / "record.json",
                      tenant="demo", surface="home")


def _answered(status: int, code: str):
    def check_document(target: Target, tenant: str, kind: str) -> CheckResult:
        problem = {"status": status, "code": code, "detail": "the admin backend is unavailable"}
        return CheckResult(f"{kind}.show", "fail", f"service answered {status} {code}", {"problem": problem})
    return check_document


@pytest.mark.parametrize(("status", "code", "unread"), [
    (503, "RECSYS_INTERNAL", True), (500, "RECSYS_INTERNAL", True), (401, "RECSYS_AUTH_INVALID", True),
    (404, "RECSYS_RULES_NOT_FOUND", False),
])
def test_a_document_the_service_did_not_give_is_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int,
                                                       code: str, unread: bool) -> None:
    monkeypatch.setattr(serving, "check_document", _answered(status, code))
    result = serving.config_and_rules(_run(tmp_path))
    assert bool(result.unread) is unread, result.unread
    if unread:
        assert f"{status}" in result.unread and "demo" in result.unread


def test_a_healthy_surface_behind_a_failing_admin_api_is_inconclusive(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "check_document", _answered(503, "RECSYS_INTERNAL"))
    run = _run(tmp_path)
    for step in run.spec.steps:
        if step.role == "check":
            run.results[step.id] = CheckResult(step.id, "ok", f"{step.id} ok")
    run.results["config-rules"] = serving.config_and_rules(run)
    run.results["diagnose"] = fix.diagnosis(run, "nothing found")
    assert run.verdict().verdict == "inconclusive"


def test_the_unexplained_advice_names_the_tenant_and_surface(tmp_path: Path) -> None:
    run = _run(tmp_path)
    for step in run.spec.steps:
        if step.role == "check":
            run.results[step.id] = CheckResult(step.id, "fail" if step.id == "config-rules" else "ok", step.id)
    run.results["diagnose"] = fix.diagnosis(run, "no known cause")
    decided = run.verdict()
    assert decided.verdict == "action-required"
    assert "{tenant}" not in decided.next_action and "{surface}" not in decided.next_action
    assert "--tenant demo" in decided.next_action
