"""Counts of every number shape in a recsys-eval report: a count that cannot be one (not finite, overflowing,
negative, fractional, beyond 2^53) makes the report untrusted with a message naming the field, never "ship" and
never an internal error. The oracle reads the number's text with :mod:`decimal`, apart from the code's JSON reading."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import suite_reports as sr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_checks.judge.evaluation.report import check_eval_report

SPECIALS = ("Infinity", "-Infinity", "NaN")
LIMIT = 2**53  # the largest count a JSON number holds one by one


def acceptable(text: str) -> bool:
    """The oracle: a count is a whole number from 0 to 2^53, read exactly from its text."""
    if text in SPECIALS:
        return False
    value = Decimal(text)
    return value >= 0 and value == value.to_integral_value() and value <= LIMIT


integers = st.integers(min_value=-(10**20), max_value=10**20).map(str)
around_the_limit = st.integers(min_value=LIMIT - 3, max_value=LIMIT + 3).map(str)
long_integers = st.integers(min_value=17, max_value=500).map(lambda digits: "1" + "0" * digits)
decimals = st.tuples(st.booleans(), st.integers(0, 10**12), st.integers(0, 999)).map(
    lambda t: f"{'-' if t[0] else ''}{t[1]}.{t[2]:03d}")
exponents = st.tuples(st.integers(1, 9), st.integers(0, 99), st.integers(-10, 400)).map(
    lambda t: f"{t[0]}.{t[1]:02d}e{t[2]}")
numbers = st.one_of(integers, around_the_limit, long_integers, decimals, exponents, st.sampled_from(SPECIALS))

# Where a count sits in a report, the text that stands there in the sample, and how the triage names it.
SLOTS = {
    "exposures": ('"exposures": 1000', "experiment variant control exposures"),
    "clicks": ('"clicks": 100', "experiment variant control clicks"),
    "conversions": ('"conversions": 10', "experiment variant control conversions"),
    "srm": ('"observed": {"control": 1000', "experiment.srm.global.observed.control"),
    "outcomes": ('"outcome_count": 300', "data_quality.join_integrity.outcome_count"),
    "assignments": ('"assignments_count": 2200', "data_quality.join_integrity.assignments_count"),
    "wins_a": ('"wins_a": 180', "interleaving.wins_a"),
    "requests": ('"requests": 500', "interleaving.requests"),
}


def _experiment_text() -> str:
    config = sr.experiment_config(ControlVariant="control", Decision={"CandidateVariant": "treatment"})
    variants = [sr.variant("control", 1000, 100, 10), sr.variant("treatment", 1200, 130, 12)]
    report = sr.experiment_report(variants, [sr.guardrail("control"), sr.guardrail("treatment")],
                                  sr.srm({"control": 1000, "treatment": 1000}, 0.9, False), config)
    report["data_quality"]["join_integrity"]["outcome_count"] = 300
    return json.dumps(report)


SAMPLES = {"experiment": _experiment_text(), "interleaving": json.dumps(sr.interleaving_report())}


def _triage(slot: str, literal: str):
    sample = SAMPLES["interleaving" if slot in ("wins_a", "requests") else "experiment"]
    text, _ = SLOTS[slot]
    assert text in sample
    prefix = text.rsplit(" ", 1)[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.json"
        path.write_text(sample.replace(text, f"{prefix} {literal}", 1))
        return check_eval_report(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slot=st.sampled_from(sorted(SLOTS)), literal=numbers)
def test_a_count_that_cannot_be_one_makes_the_report_untrusted(slot, literal):
    """Any number shape in any count: refused exactly when the oracle refuses it, with a message naming the field;
    a refused count never lets the report say ship, and nothing raises."""
    res = _triage(slot, literal)
    _, where = SLOTS[slot]
    named = [p for p in res.data["trust_problems"] if p.startswith(where) and "cannot be trusted" in p]
    if acceptable(literal):
        assert not named, named
    else:
        assert named, (literal, res.summary)
        assert res.status == "fail" and "inconsistent_report" in res.data["trust_causes"]
        assert not res.summary.startswith("data can be trusted")


@pytest.mark.parametrize(("slot", "literal", "says"), [
    ("exposures", "Infinity", "not a finite number"),
    ("exposures", "1e400", "not a finite number"),
    ("srm", "1e308", "absurd"),
    ("srm", "1" + "0" * 400, "absurd"),
    ("clicks", "-3", "negative"),
    ("conversions", "10.5", "not a whole number"),
])
def test_the_issue_samples_are_untrusted_with_a_message(slot, literal, says):
    """The reported shapes (exposures Infinity or 1e400, SRM counts of 1e308): untrusted, said why, no error."""
    res = _triage(slot, literal)
    assert res.status == "fail" and says in res.summary, res.summary


def test_sound_counts_stay_trusted():
    """The sample itself, every count sound: trusted (the detector is quiet)."""
    for slot in ("exposures", "wins_a"):
        text, _ = SLOTS[slot]
        res = _triage(slot, text.rsplit(" ", 1)[1])
        assert res.data["trusted"], res.summary


def test_the_cli_says_untrusted_and_exits_1(tmp_path, capsys):
    """`eval report` on a report whose exposures are Infinity: exit 1 and the message, never an internal error."""
    from recsys_checks.cli.commands import main

    path = tmp_path / "report.json"
    path.write_text(SAMPLES["experiment"].replace('"exposures": 1000', '"exposures": Infinity', 1))
    assert main(["eval", "report", str(path)]) == 1
    out = capsys.readouterr()
    assert "not a finite number" in out.out and "internal error" not in out.err
