"""An A/A report is judged from its p-value counts, never from the suite's `uniformish` alone (always true below 20
tests). The oracle is scipy's binomial survival function (the regularized incomplete beta of ``scipy.special``, the
exact tail scipy's ``binomtest`` reports), written apart from the code under test."""

from __future__ import annotations

import suite_reports as sr
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_checks.judge.evaluation.aacheck import LEVEL, binomial_tail, judge_aa
from recsys_checks.judge.evaluation.report import check_eval_report


def upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): scipy's ``bdtrc(k - 1, n, p)`` (the p-value of ``binomtest(k, n, p,
    alternative="greater")``), imported by the tests that use it."""
    from scipy.special import bdtrc

    return 1.0 if k == 0 else float(bdtrc(k - 1, n, p))


THRESHOLDS = (0.05, 0.01, 0.001)


def aa_report(total: int, below: dict[float, int], uniformish: bool = True) -> dict:
    """An aa-check report as the real binary writes it, with these counts (one metric) and flag."""
    doc = sr.aa_report(True)
    doc["aa_check"].update({"metrics": [{"metric": "ctr", "by_segment": False,
                                         "counts": {f"{a:g}": below.get(a, 0) for a in THRESHOLDS}}],
                            "total_tests": total, "uniformish": uniformish})
    return doc


@st.composite
def aa_counts(draw):
    """A total and nested counts (fewer below a smaller threshold), as real p-values give."""
    total = draw(st.integers(0, 60))
    at05 = draw(st.integers(0, total))
    at01 = draw(st.integers(0, at05))
    at001 = draw(st.integers(0, at01))
    return total, {0.05: at05, 0.01: at01, 0.001: at001}


def oracle_biased(total: int, below: dict[float, int]) -> bool:
    level = LEVEL / len(below)
    return any(total and upper_tail(k, total, a) < level for a, k in below.items())


@settings(max_examples=200, deadline=None)
@given(case=aa_counts())
def test_the_aa_judgement_agrees_with_the_exact_binomial_test(case):
    total, below = case
    assert judge_aa(below, total).biased == oracle_biased(total, below)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 200), k=st.integers(0, 200), p=st.sampled_from(THRESHOLDS))
def test_the_binomial_tail_is_exact(n, k, p):
    k = min(k, n)
    assert abs(binomial_tail(k, n, p) - upper_tail(k, n, p)) < 1e-9 if k else binomial_tail(0, n, p) == 1.0


def test_a_small_aa_with_most_tests_significant_fails_though_uniformish_says_true(tmp_path):
    """The real run: 8 tests, 6 below p 0.05, 3 below p 0.001, `uniformish: true`."""
    res = check_eval_report(sr.write(tmp_path, aa_report(8, {0.05: 6, 0.01: 4, 0.001: 3}, uniformish=True)))
    assert res.status == "fail" and "aa_check_failed" in res.data["trust_causes"], res.summary
    assert "6 of 8 tests below p 0.05" in res.summary
    assert any("uniformish says true" in n for n in res.data["notes"])


@settings(max_examples=40, deadline=None)
@given(total=st.integers(8, 60), data=st.data())
def test_a_sound_aa_passes(tmp_path_factory, total, data):
    """As many tests below each threshold as chance gives (at most the expected count, rounded up) pass."""
    below = {a: data.draw(st.integers(0, max(0, round(a * total)))) for a in THRESHOLDS}
    below[0.01], below[0.001] = min(below[0.01], below[0.05]), min(below[0.001], below[0.01], below[0.05])
    res = check_eval_report(sr.write(tmp_path_factory.mktemp("aa"), aa_report(total, below)))
    assert res.status == "ok" and res.data["trusted"], res.summary


def test_too_few_tests_to_judge_is_said_and_not_trusted(tmp_path):
    res = check_eval_report(sr.write(tmp_path, aa_report(1, {0.05: 0})))
    assert res.status == "fail" and res.data["trust_causes"] == ["aa_check_too_small"]
    assert "too few to judge" in res.summary


def test_counts_that_exceed_the_total_are_an_inconsistent_report(tmp_path):
    res = check_eval_report(sr.write(tmp_path, aa_report(4, {0.05: 9})))
    assert "inconsistent_report" in res.data["trust_causes"]
