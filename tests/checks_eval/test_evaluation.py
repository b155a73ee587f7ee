"""Evaluation figures match the suite's definitions on small datasets whose answers are worked out by hand."""

from __future__ import annotations

import json
import math
import random
from array import array

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.evaluation.joins import p95_index, percentile_on_disk, segment_key
from recsys_checks.judge.evaluation.quality import check_eval_quality
from recsys_checks.judge.evaluation.srm import srm_test

TS = "2026-01-01T00:00:00Z"


def exp(rid, items, latency=None, error=None, **extra):
    doc = {"request_id": rid, "user_id": "u-" + rid, "ts": TS,
           "items": [{"item_id": i, "rank": n + 1} for n, i in enumerate(items)]}
    if latency is not None:
        doc["latency_ms"] = latency
    if error is not None:
        doc["error"] = error
    return doc | extra


def out(rid, item, event="click", value=None):
    doc = {"request_id": rid, "user_id": "u-" + rid, "item_id": item, "event_type": event, "ts": TS}
    return doc if value is None else doc | {"value": value}


def asg(rid, variant, experiment="exp-1", **ctx):
    doc = {"experiment_id": experiment, "variant": variant, "request_id": rid, "user_id": "u-" + rid, "ts": TS}
    return doc | ({"context": ctx} if ctx else {})


@pytest.fixture
def worked(jsonl):
    """The hand-worked dataset of the first test (see its docstring for the arithmetic)."""
    e = jsonl("e.jsonl", [
        exp("r1", ["a", "b", "c"], latency=10),
        exp("r2", ["a"], latency=20, error=True),
        exp("r3", [], latency=30),
        exp("r4", ["a", "b"], latency=40),
        exp("r1", ["z"], latency=999),  # duplicate request id: the first r1 wins
        exp("r5", ["a"]),
    ])
    o = jsonl("o.jsonl", [out("r1", "a"), out("r1", "b"), out("r1", "b", "conversion", 5.0), out("r4", "a"),
                          out("r9", "a")])
    a = jsonl("a.jsonl", [asg("r1", "A"), asg("r2", "A"), asg("r3", "B"), asg("r4", "B"), asg("r6", "B"),
                          asg("r5", "X", experiment="exp-2")])
    return e, o, a


def test_join_rates_completeness_variants_and_guardrails_match_the_hand_worked_answer(worked):
    """6 exposure records (r1 twice), 5 outcomes, experiment exp-1 (matched case-insensitively) has r1 r2 r3 r4 r6.

    exposure_join_rate = exposures with an outcome (r1, r4) / all records incl. the duplicate = 2/6
    outcome_join_rate = outcomes of r1 (3) and r4 (1) / 5 outcomes (r9 matches nothing) = 4/5
    assignment_join_rate = exposures with an assignment (r1 r2 r3 r4) / assigned ids (r1 r2 r3 r4 r6) = 4/5
    exposure completeness: r3 has no items = 1 missing of 6
    A = r1, r2: 2 clicks, 1 conversion worth 5 -> CTR 2/2 = 1, CVR 1/2, revenue/request 5/2; errors 1/2;
      latencies [10, 20] -> index floor(1 * 0.95) = 0 -> 10
    B = r3, r4: 1 click -> CTR 1/2; empty r3 -> 1/2; latencies [30, 40] -> 30
    """
    e, o, a = worked
    res = check_eval_quality(e, o, a, "EXP-1")
    j = res.data["join_integrity"]
    assert (j["exposure_count"], j["outcome_count"], j["assignments_count"]) == (6, 5, 5)
    assert j["duplicate_exposure_request_ids"] == 1
    assert j["exposure_join_rate"] == pytest.approx(2 / 6)
    assert j["outcome_join_rate"] == pytest.approx(4 / 5)
    assert j["assignment_join_rate"] == pytest.approx(4 / 5)
    assert j["orphan_outcomes"] == 1
    assert res.data["completeness"]["exposure"] == {"total": 6, "missing": 1, "missing_rate": pytest.approx(1 / 6)}
    assert res.data["variants"] == [
        {"variant": "A", "exposures": 2, "clicks": 2, "conversions": 1, "ctr": 1.0, "conversion_rate": 0.5,
         "revenue": 5.0, "revenue_per_request": 2.5},
        {"variant": "B", "exposures": 2, "clicks": 1, "conversions": 0, "ctr": 0.5, "conversion_rate": 0.0,
         "revenue": 0.0, "revenue_per_request": 0.0},
    ]
    g = {row["variant"]: row for row in res.data["guardrails"]}
    assert (g["A"]["latency_p95_ms"], g["A"]["error_rate"], g["A"]["empty_rate"]) == (10.0, 0.5, 0.0)
    assert (g["B"]["latency_p95_ms"], g["B"]["error_rate"], g["B"]["empty_rate"]) == (30.0, 0.0, 0.5)
    assert not g["A"]["pass_error_rate"] and not g["B"]["pass_empty_rate"] and g["A"]["pass_latency"]


def test_srm_and_decision_on_the_hand_worked_dataset(worked):
    """SRM: A 2, B 3 (r6 counts: assignments, not exposures), expected 2.5 each:
    chi2 = (0.5^2 + 0.5^2) / 2.5 = 0.2, df 1, p = erfc(sqrt(0.1)) = 0.6547; 5 < min_sample 100: not detected.
    Decision: A and B tie on exposures, so the control is A by name; candidate B.
    CTR delta = 0.5 - 1.0 = -0.5 < 0 -> fail, primary metric regression.
    Not trusted: outcome and assignment join rates 80 % < 95 %.
    """
    e, o, a = worked
    res = check_eval_quality(e, o, a, "exp-1")
    srm = res.data["srm"]["global"]
    assert srm["observed"] == {"A": 2, "B": 3} and srm["df"] == 1
    assert srm["chi2"] == pytest.approx(0.2)
    assert srm["p_value"] == pytest.approx(math.erfc(math.sqrt(0.1)))
    assert srm["detected"] is False
    d = res.data["decision_detail"]
    assert (d["decision"], d["reason"], d["control_variant"], d["candidate_variant"]) == \
        ("fail", "primary metric regression", "A", "B")
    assert d["primary_metrics"][0]["delta"] == pytest.approx(-0.5)
    assert res.status == "fail" and res.data["trusted"] is False
    assert any("outcome join rate 80.0%" in p for p in res.data["trust_problems"])
    assert any("assignment join rate 80.0%" in p for p in res.data["trust_problems"])
    assert any("not a trust signal" in n for n in res.data["notes"])


def test_without_assignments_there_is_no_decision_and_clean_joins_are_trusted(jsonl):
    """No experiment: join rates only; every outcome joins, so the data are trusted (a warning: no decision)."""
    e = jsonl("e.jsonl", [exp("r1", ["a", "b"]), exp("r2", ["a"])])
    o = jsonl("o.jsonl", [out("r1", "a")])
    res = check_eval_quality(e, o)
    assert res.data["outcome_join_rate"] == 1.0 and res.data["exposure_join_rate"] == 0.5
    assert res.data["decision"] is None and res.data["srm"] is None
    assert res.status == "warn" and res.data["trusted"] is True


# ------------------------------------------------------------------------------------------------ SRM


def test_srm_fires_on_70_30_and_stays_quiet_on_60_40():
    """Equal weights, 100 assignments, expected 50 each.
    60/40: chi2 = (10^2 + 10^2) / 50 = 4, p = erfc(sqrt(2)) = 0.0455 > 0.001: quiet.
    70/30: chi2 = (20^2 + 20^2) / 50 = 16, p = erfc(sqrt(8)) = 6.3e-5 < 0.001: detected.
    """
    quiet = srm_test({"A": 60, "B": 40})
    assert quiet["chi2"] == pytest.approx(4.0) and quiet["p_value"] == pytest.approx(math.erfc(math.sqrt(2)))
    assert quiet["detected"] is False
    fired = srm_test({"A": 70, "B": 30})
    assert fired["chi2"] == pytest.approx(16.0) and fired["p_value"] == pytest.approx(math.erfc(math.sqrt(8)))
    assert fired["detected"] is True


def test_srm_needs_min_sample():
    """99 against 0 is extreme (chi2 = 99), but 99 assignments are below min_sample 100: not detected."""
    res = srm_test({"A": 99, "B": 0})
    assert res["chi2"] == pytest.approx(99.0) and res["p_value"] < 1e-20 and res["detected"] is False


def test_srm_with_three_variants_has_two_degrees_of_freedom():
    """50/50/20, expected 40 each: chi2 = (100 + 100 + 400) / 40 = 15, df 2, p = exp(-15/2) = 5.5e-4 < 0.001."""
    res = srm_test({"A": 50, "B": 50, "C": 20})
    assert res["df"] == 2 and res["chi2"] == pytest.approx(15.0)
    assert res["p_value"] == pytest.approx(math.exp(-7.5)) and res["detected"] is True


def test_srm_uses_configured_weights_and_counts_an_expected_variant_without_traffic():
    """Weights 2:1 and counts 200/100 fit exactly (p = 1). An expected variant with no assignment counts as 0:
    150/150/0 against equal thirds gives chi2 = (50^2 + 50^2 + 100^2) / 100 = 150; a variant without a weight is
    reported rather than silently passing."""
    assert srm_test({"A": 200, "B": 100}, {"A": 2, "B": 1})["p_value"] == pytest.approx(1.0)
    res = srm_test({"A": 150, "B": 150}, {"A": 1, "B": 1, "C": 1})
    assert res["chi2"] == pytest.approx(150.0) and res["detected"] is True
    assert srm_test({"A": 50, "B": 50, "Z": 5}, {"A": 1, "B": 1})["unexpected_variants"] == ["Z"]


def test_srm_per_segment_finds_a_mismatch_hidden_in_the_total(jsonl):
    """Overall 100/100, but mobile 80/20 and desktop 20/80: each segment has chi2 = (30^2 * 2) / 50 = 36."""
    assignments, exposures = [], []
    for i in range(200):
        device = "mobile" if i < 100 else "desktop"
        variant = ("A" if i % 100 < 80 else "B") if device == "mobile" else ("A" if i % 100 < 20 else "B")
        assignments.append(asg(f"r{i}", variant, device=device))
        exposures.append(exp(f"r{i}", ["a"]))
    e, o = jsonl("e.jsonl", exposures), jsonl("o.jsonl", [out("r1", "a")])
    a = jsonl("a.jsonl", assignments)
    res = check_eval_quality(e, o, a, slice_keys=["device"], max_relative_lift=0)
    assert res.data["srm"]["global"]["detected"] is False
    seg = res.data["srm"]["by_segment"]
    assert set(seg) == {"device=mobile", "device=desktop"}
    assert seg["device=mobile"]["chi2"] == pytest.approx(36.0) and seg["device=mobile"]["detected"]
    assert any("segment" in p for p in res.data["trust_problems"])


def test_segment_key_is_sorted_key_value_pairs():
    """As the suite: key=value of each slice key, sorted, joined with |; __all__ without keys."""
    assert segment_key({"b": "2", "a": "1"}, ["b", "a"]) == "a=1|b=2"
    assert segment_key({}, ["a"]) == "a="
    assert segment_key({"a": "1"}, []) == "__all__"


# ------------------------------------------------------------------------------------------------ p95


def test_p95_index_is_the_floor_of_n_minus_one_times_p():
    """n = 20: floor(19 * 0.95) = floor(18.05) = 18; n = 1: 0; n = 100: floor(94.05) = 94."""
    assert (p95_index(20), p95_index(1), p95_index(100)) == (18, 0, 94)


def test_percentile_on_disk_equals_the_sorted_element(tmp_path):
    """Random latencies with ties, zeros and -0.0 (stored as 0.0): the radix selection is exact."""
    rng = random.Random(3)
    for n in (1, 2, 20, 1000, 70_001):
        values = [round(rng.random() * 300, 1) for _ in range(n)] + [0.0, 0.0]
        path = tmp_path / f"v{n}.f64"
        path.write_bytes(array("d", values).tobytes())
        assert percentile_on_disk(path, len(values)) == sorted(values)[p95_index(len(values))]
    path.write_bytes(array("d", [float(v) for v in range(1, 21)]).tobytes())
    assert percentile_on_disk(path, 20) == 19.0


# ------------------------------------------------------------------------------------------------ impossible lift


def test_more_clicks_than_items_is_impossible_and_a_conversion_without_click_is_an_orphan(jsonl):
    """r1 shows one item but has 2 clicks: impossible. r2's conversion of b has no click on b: an orphan conversion
    (1 of 1 conversions, above the 50 % share: untrusted, cause orphan_conversion), never an impossible lift."""
    e = jsonl("e.jsonl", [exp("r1", ["a"]), exp("r2", ["a", "b"])])
    o = jsonl("o.jsonl", [out("r1", "a"), out("r1", "a"), out("r2", "a"), out("r2", "b", "conversion", 3.0)])
    res = check_eval_quality(e, o)
    checks = {f["check"]: f for f in res.data["impossible"]}
    assert checks["more_clicks_than_items"]["count"] == 1 and checks["more_clicks_than_items"]["examples"][0].startswith("r1")
    assert "conversion_without_click" not in checks and "orphan_conversion" not in checks
    orphan = res.data["orphan_conversions"]
    assert (orphan["count"], orphan["conversions"], orphan["share"], orphan["examples"]) == (1, 1, 1.0, ["r2/b"])
    assert res.data["trust_causes"] == ["impossible_lift", "orphan_conversion"]
    assert res.status == "fail" and res.data["duplicates"]["outcomes"] == 1


def test_orphan_conversions_below_the_share_are_a_note(jsonl):
    """4 conversions, 1 without a click: 25 % < 50 %, a note and trusted; with a 20 % share, untrusted."""
    e = jsonl("e.jsonl", [exp(f"r{i}", ["a", "b"]) for i in range(4)])
    o = jsonl("o.jsonl", [out("r0", "a"), out("r0", "a", "conversion", 1.0), out("r1", "a"),
                          out("r1", "a", "conversion", 1.0), out("r2", "b"), out("r2", "b", "conversion", 1.0),
                          out("r3", "a"), out("r3", "b", "conversion", 1.0)])
    res = check_eval_quality(e, o)
    assert res.data["trusted"] and res.data["orphan_conversions"]["share"] == 0.25
    assert any(n.startswith("orphan conversions: 1 of 4") for n in res.data["notes"])
    res = check_eval_quality(e, o, max_orphan_conversion_share=0.2)
    assert res.data["trust_causes"] == ["orphan_conversion"] and "25%" in res.summary


def test_a_lift_beyond_the_bound_is_a_data_problem_not_a_win(jsonl):
    """Control CTR 10/100 = 0.1, candidate 20/100 = 0.2: relative lift +100 % > 50 %: not trusted, though the
    suite's rules alone would ship; with a bound of 1.5 the same data are trusted and ship."""
    exposures, outcomes, assignments = [], [], []
    for i in range(200):
        variant = "control" if i < 100 else "treatment"
        exposures.append(exp(f"r{i}", ["a", "b"], latency=50))
        assignments.append(asg(f"r{i}", variant))
        if (variant == "control" and i % 10 == 0) or (variant == "treatment" and i % 5 == 0):
            outcomes.append(out(f"r{i}", "a"))
    e, o, a = jsonl("e.jsonl", exposures), jsonl("o.jsonl", outcomes), jsonl("a.jsonl", assignments)
    res = check_eval_quality(e, o, a)
    assert res.data["decision"] == "ship" and res.status == "fail"
    assert [f["check"] for f in res.data["impossible"]] == ["lift_beyond_bound"]
    assert "+100%" in res.data["impossible"][0]["detail"] and "do not act on it" in res.summary
    res = check_eval_quality(e, o, a, max_relative_lift=1.5)
    assert res.status == "ok" and res.data["trusted"] and res.data["decision"] == "ship"


def test_guardrail_failure_holds_and_srm_holds(jsonl):
    """Treatment p95 latency 400 ms > 250 ms: hold, guardrail regression (trusted data: a warning, exit 0)."""
    exposures, outcomes, assignments = [], [], []
    for i in range(200):
        variant = "control" if i % 2 else "treatment"
        exposures.append(exp(f"r{i}", ["a"], latency=400 if variant == "treatment" else 50))
        assignments.append(asg(f"r{i}", variant))
        if i % 10 < 2:
            outcomes.append(out(f"r{i}", "a"))
    e, o, a = jsonl("e.jsonl", exposures), jsonl("o.jsonl", outcomes), jsonl("a.jsonl", assignments)
    res = check_eval_quality(e, o, a, control_variant="control")
    assert res.data["decision_detail"]["reason"] == "guardrail regression" and res.status == "warn"
    assert res.data["decision_detail"]["failed_guardrails"] == ["p95 latency ms 400"]


# ------------------------------------------------------------------------------------------------ contracts


def test_bad_lines_are_reported_with_file_line_and_reason_and_the_rest_is_summarised(jsonl):
    """Five kinds of broken line; the good lines are still counted and the verdict is not trusted."""
    e = jsonl("e.jsonl", [
        exp("r1", ["a"]),
        exp("r2", ["a"], latencyMs=3),
        '{"request_id": "r3", ',
        {"request_id": "r4", "user_id": "u", "ts": "yesterday", "items": []},
        {"request_id": "r5", "user_id": "u", "ts": TS, "items": [{"item_id": "a", "rank": 0}]},
        {"request_id": "", "user_id": "u", "ts": TS, "items": []},
        "",
        exp("r6", ["a"]),
    ])
    o = jsonl("o.jsonl", [out("r1", "a"), {**out("r6", "a"), "event_type": "view"}])
    res = check_eval_quality(e, o)
    lines = {row["kind"]: row for row in res.data["lines"]}
    assert (lines["exposure"]["lines"], lines["exposure"]["good"], lines["exposure"]["bad"]) == (8, 2, 5)
    problems = [(b["line"], b["problem"]) for b in res.data["bad_lines"]]
    assert problems[0][0] == 2 and "unknown field 'latencyMs'" in problems[0][1]
    assert problems[1][0] == 3 and "not valid JSON" in problems[1][1]
    assert problems[2][0] == 4 and "RFC 3339" in problems[2][1]
    assert problems[3][0] == 5 and "rank is 0" in problems[3][1]
    assert problems[4][0] == 6 and "request_id is empty" in problems[4][1]
    assert res.data["bad_lines"][-1]["file"].endswith("o.jsonl") and "view" in res.data["bad_lines"][-1]["problem"]
    assert res.data["join_integrity"]["exposure_count"] == 2
    assert res.status == "fail" and "6 line(s) break the contract" in res.summary


def test_a_missing_file_is_bad_input(jsonl, tmp_path):
    """Exit 2 material: a path that does not exist, or a directory, raises BadInput before anything is read."""
    o = jsonl("o.jsonl", [])
    with pytest.raises(BadInput, match="does not exist"):
        check_eval_quality(tmp_path / "nope.jsonl", o)
    with pytest.raises(BadInput, match="not a regular file"):
        check_eval_quality(tmp_path, o)


def test_partitions_do_not_change_the_answer(worked):
    """The same figures whether the logs are joined in one partition or many."""
    e, o, a = worked
    one = check_eval_quality(e, o, a, "exp-1")
    many = check_eval_quality(e, o, a, "exp-1", partition_bytes=64)
    assert many.data["partitions"] > 1
    for key in ("join_integrity", "variants", "guardrails", "srm", "decision_detail"):
        assert many.data[key] == one.data[key]


def test_item_objects_follow_the_schema_extra_fields_allowed_bounds_checked(jsonl):
    """Inside items the schema allows extra fields; a negative propensity or a missing rank is a bad line."""
    e = jsonl("e.jsonl", [
        {**exp("r1", []), "items": [{"item_id": "a", "rank": 1, "score": 0.3, "propensity": 0.2}]},
        {**exp("r2", []), "items": [{"item_id": "a", "rank": 1, "propensity": -0.1}]},
        {**exp("r3", []), "items": [{"item_id": "a"}]},
        {**exp("r4", []), "items": [{"item_id": "", "rank": 1}]},
    ])
    res = check_eval_quality(e, jsonl("o.jsonl", [out("r1", "a")]))
    problems = {b["line"]: b["problem"] for b in res.data["bad_lines"]}
    assert set(problems) == {2, 3, 4}
    assert "propensity is -0.1" in problems[2] and "rank is missing" in problems[3] and "item_id is empty" in problems[4]


# ------------------------------------------------------------------------------------------------ the suite's settings


@pytest.fixture
def slow_candidate(jsonl):
    """200 requests, 50/50; treatment p95 latency 400 ms, CTR 0.2 against 0.15, conversions 0.05 against 0.1."""
    exposures, outcomes, assignments = [], [], []
    for i in range(200):
        variant = "control" if i % 2 else "treatment"
        exposures.append(exp(f"r{i}", ["a", "b"], latency=400 if variant == "treatment" else 50))
        assignments.append(asg(f"r{i}", variant))
        k = i // 2
        if (variant == "treatment" and k % 5 == 0) or (variant == "control" and k % 20 in (1, 2, 3)):
            outcomes.append(out(f"r{i}", "a"))
            if (variant == "treatment" and k % 20 == 0) or (variant == "control" and k % 20 in (1, 2)):
                outcomes.append(out(f"r{i}", "a", "conversion", 5.0))
    return jsonl("e.jsonl", exposures), jsonl("o.jsonl", outcomes), jsonl("a.jsonl", assignments)


def test_our_defaults_gate_guardrails_and_the_suites_do_not(slow_candidate, tmp_path):
    """Ours: both gates on, p95 250 ms: hold (guardrail regression). The suite's rules with its gate off ship, and the
    difference says so; a recsys-eval config without a decision block gives no decision at all."""
    e, o, a = slow_candidate
    ours = check_eval_quality(e, o, a, control_variant="control", max_relative_lift=0)
    assert ours.data["decision"] == "hold" and ours.data["decision_detail"]["reason"] == "guardrail regression"
    assert "our defaults" in ours.data["suite_decision"] and "guardrail gate on" in ours.data["suite_decision"]
    off = check_eval_quality(e, o, a, control_variant="control", guardrail_gate=False, max_relative_lift=0)
    assert off.data["decision"] == "ship" and off.status == "warn"
    assert "its guardrail gate is off" in off.data["difference"]
    config = tmp_path / "experiment.yaml"
    config.write_text("mode: experiment\nexperiment:\n  control_variant: control\n  guardrails:\n"
                      "    max_latency_p95_ms: 250\n  decision:\n    enabled: true\n")
    from recsys_checks.judge.evaluation.settings import from_config_file
    suite = check_eval_quality(e, o, a, settings=from_config_file(config), max_relative_lift=0)
    assert suite.data["decision"] == "ship" and "guardrail gate off, SRM gate off" in suite.data["suite_decision"]
    config.write_text(config.read_text() + "    guardrail_gate: true\n")
    assert check_eval_quality(e, o, a, settings=from_config_file(config),
                              max_relative_lift=0).data["decision"] == "hold"


def test_every_primary_metric_and_its_threshold_counts(slow_candidate):
    """CTR +0.05 passes; conversion_rate 0.05 - 0.1 = -0.05 fails: fail (primary metric regression). A CTR
    threshold of 0.06 fails CTR alone."""
    e, o, a = slow_candidate
    res = check_eval_quality(e, o, a, control_variant="control", primary_metrics=["ctr", "conversion_rate"],
                             guardrail_gate=False, max_relative_lift=0)
    rows = {r["metric"]: r for r in res.data["decision_detail"]["primary_metrics"]}
    assert rows["ctr"]["delta"] == pytest.approx(0.05) and rows["conversion_rate"]["delta"] == pytest.approx(-0.05)
    assert res.data["decision_detail"]["reason"] == "primary metric regression"
    res = check_eval_quality(e, o, a, control_variant="control", primary_thresholds={"CTR": 0.06},
                             guardrail_gate=False, max_relative_lift=0)
    assert res.data["decision"] == "fail" and res.data["decision_detail"]["primary_metrics"][0]["threshold"] == 0.06


def test_the_cli_takes_the_suites_options(slow_candidate, tmp_path, capsys):
    """--primary-metric NAME[:THRESHOLD] repeatable, --no-guardrail-gate, --config; a config field the suite does
    not know is refused (exit 2), as the suite refuses it."""
    from recsys_checks.cli.commands import main

    e, o, a = slow_candidate
    base = ["eval", "quality", "--exposures", str(e), "--outcomes", str(o), "--assignments", str(a), "--control",
            "control", "--max-relative-lift", "0", "--json"]
    assert main(base + ["--no-guardrail-gate"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["decision"] == "ship"
    main(base + ["--no-guardrail-gate", "--primary-metric", "ctr:0.06", "--primary-metric", "revenue_per_request"])
    detail = json.loads(capsys.readouterr().out)["data"]["decision_detail"]
    assert [r["metric"] for r in detail["primary_metrics"]] == ["ctr", "revenue_per_request"]
    assert detail["decision"] == "fail" and detail["primary_metrics"][0]["threshold"] == 0.06
    config = tmp_path / "bad.yaml"
    config.write_text("experiment:\n  decision:\n    guardrail_gates: true\n")
    assert main(base + ["--config", str(config)]) == 2
    assert "guardrail_gates not found" in capsys.readouterr().err


def test_a_decision_made_with_our_defaults_is_labelled_ours_not_the_suites(slow_candidate, tmp_path):
    """Without the run's configuration the summary says "our decision"; with it, "the suite's decision"."""
    e, o, a = slow_candidate
    ours = check_eval_quality(e, o, a, control_variant="control", max_relative_lift=0)
    assert ours.data["decision_by"] == "ours" and "our decision (no run configuration given)" in ours.summary
    assert "the suite's decision" not in ours.summary
    config = tmp_path / "experiment.yaml"
    config.write_text("mode: experiment\nexperiment:\n  control_variant: control\n  decision:\n    enabled: true\n")
    from recsys_checks.judge.evaluation.settings import from_config_file
    suite = check_eval_quality(e, o, a, settings=from_config_file(config), max_relative_lift=0)
    assert suite.data["decision_by"] == "the suite" and "the suite's decision:" in suite.summary
