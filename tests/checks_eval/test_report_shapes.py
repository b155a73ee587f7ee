"""Reports in every mode, in the shapes recsys-eval writes them (RECSYS-INTERFACES §3.1), with and without the
suite's decision file and with its gates on and off: the triage states the suite's decision exactly as the suite
reached it, and our trust verdict beside it with the reason for any difference."""

from __future__ import annotations

import json

import pytest
import suite_reports as sr

from recsys_checks.cli.commands import main
from recsys_checks.judge.evaluation.report import check_eval_report

# --- experiment reports: the suite's decision ------------------------------------------------------------------------

# A (control) 1000 exposures, B (candidate) 1200: an SRM (p ~ 1e-5), and by exposures B would be taken as control.
SRM_VARIANTS = [sr.variant("A", 1000, 120, 24, 480.0), sr.variant("B", 1200, 150, 30, 600.0)]
SRM_SECTION = sr.srm({"A": 1000, "B": 1200}, 1.97e-5, True)
GUARDS = [sr.guardrail("A"), sr.guardrail("B")]


def _shape(name):
    """(report, decision file or None, the suite's decision word, its reason) for each shape in §3.1."""
    if name == "srm-gate-on":  # the SRM report: the suite holds; our default control would have been B
        config = sr.experiment_config(ControlVariant="A", Decision={"CandidateVariant": "B", "SRMGate": True})
        return (sr.experiment_report(SRM_VARIANTS, GUARDS, SRM_SECTION, config),
                sr.decision_file("hold", "srm detected", "A", "B", [("ctr", 0.005, 0.0)], srm_detected=True),
                "hold", "srm detected")
    if name == "srm-gate-enabled-in-srm":  # srm.gate_enabled turns the gate on too
        config = sr.experiment_config(ControlVariant="A", SRM={"GateEnabled": True})
        return (sr.experiment_report(SRM_VARIANTS, GUARDS, SRM_SECTION, config),
                sr.decision_file("hold", "srm detected", "A", "B", [("ctr", 0.005, 0.0)], srm_detected=True),
                "hold", "srm detected")
    if name == "srm-gate-off":  # the same data with the gate off: the suite ships
        config = sr.experiment_config(ControlVariant="A")
        return (sr.experiment_report(SRM_VARIANTS, GUARDS, SRM_SECTION, config),
                sr.decision_file("ship", "", "A", "B", [("ctr", 0.005, 0.0)], srm_detected=True), "ship", "")
    variants = [sr.variant("control", 1000, 100, 20, 400.0), sr.variant("treatment", 1000, 110, 18, 380.0)]
    split = sr.srm({"control": 1000, "treatment": 1000}, 1.0, False)
    if name == "two-primary-metrics":  # the edge case: the second primary metric regresses, the suite fails
        config = sr.experiment_config(ControlVariant="control", PrimaryMetrics=["ctr", "conversion_rate"],
                                      Decision={"PrimaryThresholds": {"conversion_rate": 0.0}})
        return (sr.experiment_report(variants, [sr.guardrail("control"), sr.guardrail("treatment")], split, config),
                sr.decision_file("fail", "primary metric regression", "control", "treatment",
                                 [("ctr", 0.01, 0.0), ("conversion_rate", -0.002, 0.0)]),
                "fail", "primary metric regression")
    slow = [sr.guardrail("control"), sr.guardrail("treatment", 400.0, latency_ok=False)]
    rows = [("latency_p95_ms", 400.0, 250.0, False), ("error_rate", 0.0, 0.0, True), ("empty_rate", 0.0, 0.0, True)]
    if name == "guardrail-gate-on":
        config = sr.experiment_config(ControlVariant="control", Guardrails={"MaxLatencyP95Ms": 250},
                                      Decision={"GuardrailGate": True})
        return (sr.experiment_report(variants, slow, split, config),
                sr.decision_file("hold", "guardrail regression", "control", "treatment", [("ctr", 0.01, 0.0)], rows),
                "hold", "guardrail regression")
    if name == "guardrail-gate-off":
        config = sr.experiment_config(ControlVariant="control", Guardrails={"MaxLatencyP95Ms": 250})
        return (sr.experiment_report(variants, slow, split, config),
                sr.decision_file("ship", "", "control", "treatment", [("ctr", 0.01, 0.0)], rows), "ship", "")
    if name == "threshold":  # CTR +0.01 below its 0.02 threshold: fail
        config = sr.experiment_config(ControlVariant="control", Decision={"PrimaryThresholds": {"ctr": 0.02}})
        return (sr.experiment_report(variants, GUARDS[:0] + [sr.guardrail("control"), sr.guardrail("treatment")],
                                     split, config),
                sr.decision_file("fail", "primary metric regression", "control", "treatment", [("ctr", 0.01, 0.02)]),
                "fail", "primary metric regression")
    if name == "no-srm-section":  # SRM not enabled: no srm section, the suite ships
        config = sr.experiment_config(ControlVariant="control", SRM=None)
        return (sr.experiment_report(variants, [sr.guardrail("control"), sr.guardrail("treatment")], None, config),
                sr.decision_file("ship", "", "control", "treatment", [("ctr", 0.01, 0.0)]), "ship", "")
    raise KeyError(name)


SHAPES = ["srm-gate-on", "srm-gate-enabled-in-srm", "srm-gate-off", "two-primary-metrics", "guardrail-gate-on",
          "guardrail-gate-off", "threshold", "no-srm-section"]


@pytest.mark.parametrize("name", SHAPES)
def test_the_triage_states_the_suites_decision_as_the_suite_reached_it(tmp_path, name):
    """With the decision file: its decision and reason, verbatim, named as the suite's. Without it: the same decision
    recomputed from the report with the run's own settings, and said to be recomputed."""
    report, decision, word, reason = _shape(name)
    res = check_eval_report(sr.write(tmp_path, report, decision))
    assert (res.data["decision"], res.data["decision_detail"]["reason"]) == (word, reason), res.summary
    assert res.data["suite_decision"].startswith(f"{word} ({reason})" if reason else word)
    assert "from the suite's decision file report.json.decision.json" in res.data["suite_decision"]
    assert res.data["decision_detail"]["control_variant"] == decision["control_variant"]
    assert "inconsistent_report" not in res.data["trust_causes"]  # the recomputation agrees with the file

    (tmp_path / "report.json.decision.json").unlink()
    res = check_eval_report(tmp_path / "report.json")
    assert (res.data["decision"], res.data["decision_detail"]["reason"]) == (word, reason), res.summary
    assert "recomputed from the report with the run's effective_config" in res.data["suite_decision"]
    assert res.data["decision_detail"]["candidate_variant"] == decision["candidate_variant"]


def test_an_srm_report_keeps_the_runs_control_and_says_why_we_differ(tmp_path):
    """The issue's SRM report: the suite holds (srm detected), on its control A; our verdict is untrusted (SRM) on a
    separate line, and the difference is one line."""
    report, decision, _, _ = _shape("srm-gate-on")
    res = check_eval_report(sr.write(tmp_path, report, decision))
    detail = res.data["decision_detail"]
    assert (detail["control_variant"], detail["candidate_variant"]) == ("A", "B")
    assert res.status == "fail" and res.data["trust_causes"] == ["srm"]
    assert res.data["trust_verdict"].startswith("not trusted: sample ratio mismatch")
    assert res.data["difference"].startswith("the suite says hold (srm detected), but on data that cannot be trusted")
    assert "\n" not in res.data["difference"]


def test_gates_off_the_suite_ships_and_the_difference_names_the_gate(tmp_path):
    """Guardrail gate off: the suite ships on a candidate that fails p95 latency; trusted, a warning (exit 0), and
    the difference says that the gate is off and that it would hold."""
    report, decision, _, _ = _shape("guardrail-gate-off")
    res = check_eval_report(sr.write(tmp_path, report, decision))
    assert res.status == "warn" and res.data["trusted"] and res.data["decision"] == "ship"
    assert res.data["difference"] == ("the suite ships because its guardrail gate is off; with the gate on it would "
                                      "be hold (guardrail regression)")
    assert "guardrail gate off, SRM gate off" in res.data["suite_decision"]
    report, decision, _, _ = _shape("srm-gate-off")
    res = check_eval_report(sr.write(tmp_path, report, decision))
    assert res.data["decision"] == "ship" and res.status == "fail"
    assert res.data["difference"].startswith("the suite ships, but the data cannot be trusted (srm)")


def test_a_run_without_a_decision_made_none(tmp_path):
    """Decision not enabled: the suite decided nothing, and the triage says so (its rules would ship)."""
    report, _, _, _ = _shape("no-srm-section")
    report["effective_config"]["eval"]["Experiment"]["Decision"] = None
    res = check_eval_report(sr.write(tmp_path, report))
    assert res.data["decision"] is None and res.status == "ok"
    assert res.data["suite_decision"].startswith("none (the run's Decision is not enabled")


def test_a_decision_file_that_the_report_contradicts_is_inconsistent(tmp_path):
    """A decision file saying ship beside a report whose figures and settings give hold: from another run?"""
    report, decision, _, _ = _shape("srm-gate-on")
    decision.update({"decision": "ship", "reason": ""})
    res = check_eval_report(sr.write(tmp_path, report, decision))
    assert res.data["decision"] == "ship"  # still the suite's word, as the suite wrote it
    assert "inconsistent_report" in res.data["trust_causes"] and "another run" in " ".join(res.data["trust_problems"])


def test_the_decision_file_is_found_where_the_run_wrote_it(tmp_path):
    """Decision.OutputPath beside the report, or --decision on the command line."""
    report, decision, _, _ = _shape("threshold")
    report["effective_config"]["eval"]["Experiment"]["Decision"]["OutputPath"] = "out/decision.json"
    sr.write(tmp_path, report)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "decision.json").write_text(json.dumps(decision))
    res = check_eval_report(tmp_path / "report.json")
    assert res.data["decision_source"].endswith("decision.json") and res.data["decision"] == "fail"
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps(decision))
    assert check_eval_report(tmp_path / "report.json", decision_file=other).data["decision_source"] == str(other)


def test_srm_expected_means_weights_in_ours_as_in_the_suites(tmp_path):
    """The report's expected {A: 2, B: 1} are weights; ours keep them under expected, the counts under
    expected_counts (2200 * 2/3 and 2200 / 3)."""
    report, decision, _, _ = _shape("srm-gate-off")
    report["experiment"]["srm"]["global"]["expected"] = {"A": 2, "B": 1}
    res = check_eval_report(sr.write(tmp_path, report))
    glob = res.data["srm"]["global"]
    assert glob["expected"] == {"A": 2.0, "B": 1.0}
    assert glob["expected_counts"] == pytest.approx({"A": 2200 * 2 / 3, "B": 2200 / 3})


def test_orphan_conversions_in_a_report_are_their_own_finding(tmp_path):
    """The suite's reference data: B converts once with no click. At least 1 of 1 conversions without a click: an
    orphan_conversion problem above the 50 % share, never impossible_lift; at least 10 of 80, a note."""
    variants = [sr.variant("A", 2, 1, 0), sr.variant("B", 1, 0, 1, 10.0)]
    config = sr.experiment_config(ControlVariant="A", SRM=None)
    report = sr.experiment_report(variants, [sr.guardrail("A"), sr.guardrail("B")], None, config)
    res = check_eval_report(sr.write(tmp_path, report))
    assert res.data["trust_causes"] == ["orphan_conversion"] and res.data["impossible"] == []
    variants = [sr.variant("A", 1000, 100, 50), sr.variant("B", 1000, 104, 30)]
    variants[1]["clicks"] = 20  # B: 30 conversions on 20 clicks, at least 10 without a click
    variants[1]["ctr"] = 0.02
    report = sr.experiment_report(variants, [sr.guardrail("A"), sr.guardrail("B")], None, config)
    res = check_eval_report(sr.write(tmp_path, report))
    orphan = res.data["orphan_conversions"]
    assert (orphan["count"], orphan["conversions"], orphan["lower_bound"]) == (10, 80, True)
    assert "orphan_conversion" not in res.data["trust_causes"]
    assert any(n.startswith("orphan conversions: at least 10 of 80") for n in res.data["notes"])


# --- every other mode ----------------------------------------------------------------------------------------------


def test_a_sound_interleaving_report_passes_without_data_quality(tmp_path, capsys):
    """Interleaving never writes data_quality: a sound report is trusted, exit 0, and no decision is invented."""
    res = check_eval_report(sr.write(tmp_path, sr.interleaving_report()))
    assert res.status == "ok" and res.data["trusted"], res.summary
    assert res.data["decision"] is None and "B wins 240 of 420" in res.data["suite_decision"]
    assert main(["eval", "report", str(tmp_path / "report.json")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("change, cause", [({"ties": 10}, "inconsistent_report"), ({"requests": 0, "wins_a": 0,
                                           "wins_b": 0, "ties": 0}, "low_join_rate"),
                                           ({"win_rate_b": 1.4}, "impossible_lift")])
def test_an_interleaving_report_whose_counts_do_not_add_up_is_not_trusted(tmp_path, change, cause):
    doc = sr.interleaving_report()
    doc["interleaving"].update(change)
    res = check_eval_report(sr.write(tmp_path, doc))
    assert res.status == "fail" and cause in res.data["trust_causes"]


def test_aa_check_reports_pass_when_uniform_and_fail_when_not(tmp_path):
    res = check_eval_report(sr.write(tmp_path, sr.aa_report(True)))
    assert res.status == "ok" and res.data["trusted"], res.summary
    res = check_eval_report(sr.write(tmp_path, sr.aa_report(False)))
    assert res.status == "fail" and res.data["trust_causes"] == ["aa_check_failed"]
    assert any("aa_check_false_positives" in n for n in res.data["notes"])


def test_offline_reports_are_judged_on_their_data_quality_and_gates(tmp_path):
    res = check_eval_report(sr.write(tmp_path, sr.offline_report()))
    assert res.status == "ok" and "no regression gates configured" in res.data["suite_decision"]
    gates = [{"metric": "ndcg@10", "max_drop": 0.01, "delta": -0.03, "passed": False}]
    res = check_eval_report(sr.write(tmp_path, sr.offline_report(gates)))
    assert res.status == "warn" and res.data["suite_decision"].startswith("regression gates fail (ndcg@10")
    doc = sr.offline_report()
    del doc["data_quality"]
    res = check_eval_report(sr.write(tmp_path, doc))
    assert res.status == "fail" and "no data_quality.join_integrity" in res.summary
    res = check_eval_report(sr.write(tmp_path, sr.offline_report(metrics=[{"name": "ndcg@10", "value": 1.7}])))
    assert res.data["trust_causes"] == ["impossible_lift"]


def test_ope_reports_are_trusted_and_carry_the_suites_warnings(tmp_path):
    res = check_eval_report(sr.write(tmp_path, sr.ope_report()))
    assert res.status == "ok" and "ips 0.118" in res.data["suite_decision"]
    assert res.data["assignment_join_rate"] is None  # OPE has no assignments: the suite's 0 is not a rate
    res = check_eval_report(sr.write(tmp_path, sr.ope_report(["low_effective_sample_size"])))
    assert res.status == "ok" and any("low_effective_sample_size" in n for n in res.data["notes"])


def test_a_mode_without_its_section_or_an_unknown_mode_is_inconsistent(tmp_path):
    doc = sr.interleaving_report()
    del doc["interleaving"]
    assert check_eval_report(sr.write(tmp_path, doc)).data["trust_causes"] == ["inconsistent_report"]
    doc = sr.ope_report()
    doc["mode"] = "bandit"
    assert "inconsistent_report" in check_eval_report(sr.write(tmp_path, doc)).data["trust_causes"]


# --- secrets in effective_config -------------------------------------------------------------------------------------


def test_credentials_and_dsns_in_effective_config_are_never_shown_or_recorded(tmp_path, capsys):
    """The report carries the object store's AccessKey and SecretKey and a dataset DSN with a password; they are
    masked in the result, its --json and the readable output, also where the report repeats them elsewhere."""
    report, decision, _, _ = _shape("srm-gate-on")
    report["warnings"] = [f"could not reach {sr.DSN}", f"key {sr.ACCESS_KEY} denied"]
    path = sr.write(tmp_path, report, decision)
    res = check_eval_report(path)
    text = json.dumps(res.to_dict())
    for secret in (sr.ACCESS_KEY, sr.SECRET_KEY, sr.DSN, "Pw-canary-7731"):
        assert secret not in text
    s3 = res.data["effective_config"]["eval"]["Artifacts"]["ObjectStore"]["S3"]
    assert (s3["AccessKey"], s3["SecretKey"], s3["Bucket"]) == ("***", "***", "recsys")
    assert res.data["effective_config"]["dataset"]["Exposures"]["DSN"] == "***"
    for argv in (["eval", "report", str(path)], ["eval", "report", str(path), "--json"]):
        main(argv)
        out = capsys.readouterr()
        for secret in (sr.ACCESS_KEY, sr.SECRET_KEY, sr.DSN, "Pw-canary-7731"):
            assert secret not in out.out + out.err
