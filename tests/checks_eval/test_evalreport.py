"""Triage of a recsys-eval report JSON: the same problems found from the figures the suite wrote."""

from __future__ import annotations

import copy
import json
import math

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.evaluation.report import check_eval_report

# An experiment report in the suite's layout (fields as its report model names them).
REPORT = {
    "run_id": "experiment-20260102T010203Z", "mode": "experiment", "created_at": "2026-01-02T01:02:03Z",
    "version": "0.1.0", "summary": {"cases_evaluated": 2000},
    "experiment": {
        "experiment_id": "exp-1",
        "variants": [
            {"variant": "control", "exposures": 1000, "clicks": 100, "conversions": 20, "ctr": 0.1,
             "conversion_rate": 0.02, "revenue": 398, "revenue_per_request": 0.398},
            {"variant": "treatment", "exposures": 1000, "clicks": 110, "conversions": 22, "ctr": 0.11,
             "conversion_rate": 0.022, "revenue": 437.8, "revenue_per_request": 0.4378},
        ],
        "guardrails": {"per_variant": [
            {"variant": "control", "latency_p95_ms": 114.5, "error_rate": 0, "empty_rate": 0, "pass_latency": True,
             "pass_error_rate": True, "pass_empty_rate": True},
            {"variant": "treatment", "latency_p95_ms": 116.6, "error_rate": 0, "empty_rate": 0,
             "pass_latency": True, "pass_error_rate": True, "pass_empty_rate": True},
        ]},
        "srm": {"alpha": 0.001, "min_sample": 100, "global": {"p_value": 1, "observed": {"control": 1000,
                "treatment": 1000}, "expected": {"control": 1, "treatment": 1}, "detected": False,
                "sample_size": 2000}},
    },
    "data_quality": {
        "exposure_completeness": {"total": 2000, "missing": 0, "missing_rate": 0},
        "outcome_completeness": {"total": 252, "missing": 0, "missing_rate": 0},
        "join_integrity": {"exposure_count": 2000, "outcome_count": 252, "assignments_count": 2000,
                           "exposure_join_rate": 0.105, "outcome_join_rate": 1, "assignment_join_rate": 1},
    },
}


def write(tmp_path, doc, name="report.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_a_clean_report_is_trusted_and_ships(tmp_path):
    """Joins at 100 %, no SRM, guardrails pass, CTR 0.10 -> 0.11 (+10 %): trusted, ship (exit 0)."""
    res = check_eval_report(write(tmp_path, REPORT))
    assert res.status == "ok" and res.data["trusted"] and res.data["decision"] == "ship", res.summary
    assert res.data["decision_detail"]["primary_metrics"][0]["delta"] == pytest.approx(0.01)


def test_low_outcome_join_rate_is_not_trusted(tmp_path):
    """Outcome join rate 0.7 < 0.95: not trusted; the exposure join rate is noted, never judged."""
    doc = copy.deepcopy(REPORT)
    doc["data_quality"]["join_integrity"]["outcome_join_rate"] = 0.7
    res = check_eval_report(write(tmp_path, doc))
    assert res.status == "fail" and "outcome join rate 70.0% is below 95%" in res.summary
    assert any("exposure join rate" in n for n in res.data["notes"])


def test_a_reported_srm_is_not_trusted(tmp_path):
    """The report says detected (1200/800): not trusted. Without recorded settings the suite's gates are off, so
    its rules ship; with both gates on they would hold (srm detected)."""
    doc = copy.deepcopy(REPORT)
    doc["experiment"]["srm"]["global"].update({"observed": {"control": 1200, "treatment": 800}, "detected": True,
                                               "p_value": 3.7e-19})
    res = check_eval_report(write(tmp_path, doc))
    assert res.status == "fail" and res.data["trust_causes"] == ["srm"]
    assert res.data["decision"] == "ship" and res.data["decision_detail"]["gated"]["reason"] == "srm detected"
    assert "the suite ships, but the data cannot be trusted (srm)" in res.data["difference"]


def test_an_srm_the_suite_missed_is_recomputed(tmp_path):
    """The suite reports p = 1 when a variant has no expected weight; 600/400 against 50/50 is
    chi2 = (100^2 * 2) / 500 = 40, p = erfc(sqrt(20)) < 0.001: caught, and the unweighted variant named."""
    doc = copy.deepcopy(REPORT)
    doc["experiment"]["srm"]["global"].update({"observed": {"control": 600, "treatment": 400, "ghost": 5},
                                               "expected": {"control": 1, "treatment": 1}, "p_value": 1,
                                               "detected": False})
    res = check_eval_report(write(tmp_path, doc))
    glob = res.data["srm"]["global"]
    assert glob["chi2"] == pytest.approx(40.0) and glob["p_value"] == pytest.approx(math.erfc(math.sqrt(20)))
    assert res.status == "fail" and "recomputed" in res.summary
    assert any("ghost" in p for p in res.data["trust_problems"])


def test_impossible_figures_in_a_report(tmp_path):
    """CTR 0.1 -> 0.33 (+230 %) beyond the 50 % bound; more conversions than clicks; CTR above 1."""
    doc = copy.deepcopy(REPORT)
    doc["experiment"]["variants"][1].update({"clicks": 330, "ctr": 0.33})
    res = check_eval_report(write(tmp_path, doc))
    assert res.status == "fail" and "+230%" in res.summary
    doc["experiment"]["variants"][0].update({"conversions": 150, "clicks": 1200, "ctr": 1.2})
    checks = [f["check"] for f in check_eval_report(write(tmp_path, doc)).data["impossible"]]
    assert "more_clicks_than_exposures" in checks and "more_conversions_than_clicks" not in checks
    doc["experiment"]["variants"][0].update({"conversions": 150, "clicks": 100, "ctr": 0.1})
    res = check_eval_report(write(tmp_path, doc))
    assert "more_conversions_than_clicks" not in [f["check"] for f in res.data["impossible"]]
    orphan = res.data["orphan_conversions"]  # 50 of 172 conversions at least have no click: a finding of its own
    assert (orphan["count"], orphan["conversions"], orphan["lower_bound"]) == (50, 172, True)


def test_a_guardrail_failure_in_the_report_holds_only_with_the_gate_on(tmp_path):
    """pass_latency false for the candidate: trusted, a warning. The suite's gates are off by default, so it ships;
    the difference line says the guardrail gate would hold."""
    doc = copy.deepcopy(REPORT)
    doc["experiment"]["guardrails"]["per_variant"][1].update({"latency_p95_ms": 400, "pass_latency": False})
    res = check_eval_report(write(tmp_path, doc))
    assert res.status == "warn" and res.data["decision"] == "ship"
    assert res.data["decision_detail"]["gated"]["reason"] == "guardrail regression"
    assert "its guardrail gate is off" in res.data["difference"]


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), ('{"run_id": "x"}', "not a recsys-eval report"),
    ("[" * 100_000, "nested too deeply"),
])
def test_unreadable_reports_are_bad_input(tmp_path, content, match):
    """Exit 2 material: not JSON, not an object, not a report, nested past the parser, missing."""
    with pytest.raises(BadInput, match=match):
        check_eval_report(write(tmp_path, content))
    with pytest.raises(BadInput, match="does not exist"):
        check_eval_report(tmp_path / "missing.json")
