"""The eval-report-suspect runbook on reports in the suite's shapes: a sound interleaving (or A/A) report passes,
orphan conversions are their own cause (never impossible_lift), an SRM the suite's decision file holds on is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import specskit
import suite_reports as sr

from recsys_checks.core.results import CheckResult
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.steps import evaluation


def _diagnose(tmp_path: Path, report: Path) -> tuple[CheckResult, CheckResult]:
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE":
                                  f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    run = RunbookRun("eval-report-suspect", spec=specskit.spec("eval-report-suspect"), target=target, record_path=tmp_path / "out" / "record.json",
                     report=str(report))
    run.step("quality", evaluation.data_quality, show=False)
    run.step("report", evaluation.report_triage, show=False)
    run.results["hold"] = CheckResult("hold.status", "ok", "not held", {"held": False})
    return run.result("report"), evaluation.diagnose_eval_data(run)


@pytest.mark.parametrize("doc", [sr.interleaving_report(), sr.aa_report(True), sr.ope_report(), sr.offline_report()],
                         ids=["interleaving", "aa-check", "ope", "offline"])
def test_a_sound_report_of_any_mode_passes(tmp_path, doc):
    report, diagnosed = _diagnose(tmp_path, sr.write(tmp_path, doc))
    assert report.status == "ok" and report.data["trusted"], report.summary
    assert diagnosed.data.get("cause") is None and not diagnosed.data.get("lever")
    assert "can be trusted" in diagnosed.summary


def test_orphan_conversions_are_their_own_cause(tmp_path):
    variants = [sr.variant("A", 2, 1, 0), sr.variant("B", 1, 0, 1, 10.0)]
    doc = sr.experiment_report(variants, [sr.guardrail("A"), sr.guardrail("B")], None,
                               sr.experiment_config(ControlVariant="A", SRM=None))
    _, diagnosed = _diagnose(tmp_path, sr.write(tmp_path, doc))
    assert diagnosed.data["cause"] == "orphan_conversion" and diagnosed.data["lever"] == "hold"


def test_an_srm_report_with_the_suites_hold_is_named_srm(tmp_path):
    config = sr.experiment_config(ControlVariant="A", Decision={"CandidateVariant": "B", "SRMGate": True})
    doc = sr.experiment_report([sr.variant("A", 1000, 120, 24), sr.variant("B", 1200, 150, 30)],
                               [sr.guardrail("A"), sr.guardrail("B")], sr.srm({"A": 1000, "B": 1200}, 2e-5, True),
                               config)
    decision = sr.decision_file("hold", "srm detected", "A", "B", [("ctr", 0.005, 0.0)], srm_detected=True)
    report, diagnosed = _diagnose(tmp_path, sr.write(tmp_path, doc, decision))
    assert report.data["decision"] == "hold" and diagnosed.data["cause"] == "srm"


def test_an_aa_check_that_is_not_uniform_is_named(tmp_path):
    _, diagnosed = _diagnose(tmp_path, sr.write(tmp_path, sr.aa_report(False)))
    assert diagnosed.data["cause"] == "aa_check_failed"
