"""Can the evaluation logs be trusted, and what would the suite decide on them? The check of ``eval quality``.

The figures are the suite's (:mod:`~recsys_checks.judge.evaluation.joins`: join rates, variants, guardrails;
:mod:`~recsys_checks.judge.evaluation.srm`), the decision is the suite's rules
(:mod:`~recsys_checks.judge.evaluation.decision`) with the settings given
(:mod:`~recsys_checks.judge.evaluation.settings`: a recsys-eval config file, options, or **our** defaults, which
are stricter than the suite's: both gates on), and beside it our trust verdict
(:mod:`~recsys_checks.judge.evaluation.trust`), which the suite does not give.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recsys_checks.core.errors import BadInput
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.decision import decide, guardrail_row
from recsys_checks.judge.evaluation.joins import (
    MAX_SEGMENTS,
    PARTITION_INPUT_BYTES,
    JoinState,
    join_integrity,
    join_logs,
    rate,
)
from recsys_checks.judge.evaluation.logs import open_log
from recsys_checks.judge.evaluation.plausibility import (
    DEFAULT_MAX_ORPHAN_CONVERSION_SHARE,
    lift_findings,
    orphan_conversions,
)
from recsys_checks.judge.evaluation.settings import OURS, SuiteSettings
from recsys_checks.judge.evaluation.srm import srm_findings, srm_test, valid_weights
from recsys_checks.judge.evaluation.trust import Findings, verdict

__all__ = ["DEFAULTS", "check_eval_quality", "suite_line"]

# Our trust thresholds (the suite has none of these), and our decision defaults (settings.OURS).
DEFAULTS: dict[str, Any] = {
    "min_join_rate": 0.95,
    "max_relative_lift": 0.5,
    "max_orphan_conversion_share": DEFAULT_MAX_ORPHAN_CONVERSION_SHARE,
    "max_missing_rate": 0.05,
    "srm_alpha": OURS.srm_alpha,
    "srm_min_sample": OURS.srm_min_sample,
    "max_latency_p95_ms": OURS.max_latency_p95_ms,
    "max_error_rate": OURS.max_error_rate,
    "max_empty_rate": OURS.max_empty_rate,
    "primary_metrics": OURS.primary_metrics,
}


def suite_line(detail: dict[str, Any] | None, settings: SuiteSettings, authority: str) -> str:
    """``ship, by the suite's rules with <source> (guardrail gate on, SRM gate on)`` and the like."""
    if detail is None:
        return f"none ({authority})"
    said = detail["decision"] + (f" ({detail['reason']})" if detail["reason"] else "")
    return f"{said}, {authority} ({settings.gates_text()})"


def check_eval_quality(
    exposures: str | os.PathLike[str],
    outcomes: str | os.PathLike[str],
    assignments: str | os.PathLike[str] | None = None,
    experiment_id: str | None = None,
    *,
    settings: SuiteSettings | None = None,
    min_join_rate: float = DEFAULTS["min_join_rate"],
    srm_alpha: float | None = None,
    srm_min_sample: int | None = None,
    expected_weights: Mapping[str, float] | None = None,
    slice_keys: Iterable[str] | None = None,
    control_variant: str | None = None,
    candidate_variant: str | None = None,
    primary_metrics: Iterable[str] | None = None,
    primary_thresholds: Mapping[str, float] | None = None,
    max_latency_p95_ms: float | None = None,
    max_error_rate: float | None = None,
    max_empty_rate: float | None = None,
    guardrail_gate: bool | None = None,
    srm_gate: bool | None = None,
    max_relative_lift: float | None = DEFAULTS["max_relative_lift"],
    max_orphan_conversion_share: float | None = DEFAULTS["max_orphan_conversion_share"],
    max_missing_rate: float | None = DEFAULTS["max_missing_rate"],
    workdir: str | os.PathLike[str] | None = None,
    partition_bytes: int = PARTITION_INPUT_BYTES,
) -> CheckResult:
    """Read exposure, outcome and (for an experiment) assignment JSONL logs; say whether they can be trusted and
    what the suite would decide.

    The decision settings are ``settings`` (e.g. :func:`~recsys_checks.judge.evaluation.settings.from_config_file`;
    default :data:`~recsys_checks.judge.evaluation.settings.OURS`, both gates on), each overridden by the keyword
    given here (``None``: not overridden). ``ok``: trusted and the suite would ship; ``warn``: trusted, but hold,
    fail, no decision, or a hold with both gates on; ``fail``: the data cannot be trusted (``data["trust_problems"]``
    says why). Missing or unreadable files raise :class:`BadInput`.
    """
    if not 0 < min_join_rate <= 1:
        raise BadInput(f"min_join_rate {min_join_rate} must be in (0, 1], e.g. 0.95")
    if srm_alpha is not None and not 0 < srm_alpha < 1:
        raise BadInput(f"srm_alpha {srm_alpha} must be in (0, 1), e.g. 0.001")
    if srm_min_sample is not None and srm_min_sample < 0:
        raise BadInput(f"srm_min_sample {srm_min_sample} must be at least 0")
    if expected_weights is not None:
        expected_weights = valid_weights(expected_weights)  # refuse bad weights before reading anything
    base = settings or OURS
    metrics = tuple(m.lower() for m in primary_metrics) if primary_metrics is not None else None
    settings = base.override(
        "options", experiment_id=experiment_id, control_variant=control_variant,
        candidate_variant=candidate_variant, primary_metrics=metrics or None,
        primary_thresholds={**base.primary_thresholds, **{k.lower(): float(v) for k, v in primary_thresholds.items()}}
        if primary_thresholds is not None else None,
        max_latency_p95_ms=max_latency_p95_ms, max_error_rate=max_error_rate, max_empty_rate=max_empty_rate,
        srm_alpha=srm_alpha, srm_min_sample=srm_min_sample, srm_expected=expected_weights,
        srm_slice_keys=tuple(k for k in slice_keys if k) if slice_keys is not None else None,
        guardrail_gate=guardrail_gate, srm_gate=srm_gate)
    paths = {"exposure": open_log(exposures, "exposure"), "outcome": open_log(outcomes, "outcome")}
    if assignments is not None:
        paths["assignment"] = open_log(assignments, "assignment")
    keys = list(settings.srm_slice_keys)
    state = join_logs(paths, settings.experiment_id, keys, workdir=workdir, partition_bytes=partition_bytes)
    guardrails = sorted((guardrail_row(name, acc.latency_p95_ms, rate(acc.errors, acc.exposures),
                                       rate(acc.empty, acc.exposures), settings)
                         for name, acc in state.variants.items()), key=lambda g: g["variant"])
    variants = [state.variants[k].metrics() for k in sorted(state.variants)]
    return _result(state, paths, variants, guardrails, settings, min_join_rate=min_join_rate,
                   max_relative_lift=max_relative_lift, max_orphan_conversion_share=max_orphan_conversion_share,
                   max_missing_rate=max_missing_rate)


def _result(state: JoinState, paths: dict[str, Path], variants: list[dict[str, Any]],
            guardrails: list[dict[str, Any]], settings: SuiteSettings, *, min_join_rate: float,
            max_relative_lift: float | None, max_orphan_conversion_share: float | None,
            max_missing_rate: float | None) -> CheckResult:
    experiment = "assignment" in paths
    findings = Findings()
    join = join_integrity(state, experiment)
    completeness = {
        "exposure": {"total": state.exposure_count, "missing": state.exposure_missing,
                     "missing_rate": rate(state.exposure_missing, state.exposure_count)},
        "outcome": {"total": state.outcome_count, "missing": 0, "missing_rate": 0.0},
    }
    if experiment:
        completeness["assignment"] = {"total": state.assignment_count, "missing": 0, "missing_rate": 0.0}
    _join_findings(state, join, experiment, settings.experiment_id, min_join_rate, findings)
    if max_missing_rate is not None and completeness["exposure"]["missing_rate"] > max_missing_rate:
        findings.problem("incomplete_data", f"{state.exposure_missing} of {state.exposure_count} exposures "
                                            f"({completeness['exposure']['missing_rate']:.1%}) show no items, above "
                                            f"{max_missing_rate:.0%}")
    srm = _srm(state, settings, findings) if experiment else None
    detail = decide(variants, guardrails, bool(srm and srm["global"]["detected"]), settings) if experiment else None
    impossible: list[dict[str, Any]] = []
    if state.over_clicked:
        impossible.append({"check": "more_clicks_than_items", "count": state.over_clicked,
                           "detail": f"{state.over_clicked} list(s) with more clicks than items shown",
                           "examples": state.over_clicked_examples})
    impossible += lift_findings(detail, variants, max_relative_lift)
    for finding in impossible:
        findings.problem("impossible_lift", f"impossible: {finding['detail']}")
    orphan = orphan_conversions(state.orphan_conversions, state.conversions_joined, max_orphan_conversion_share,
                                findings, examples=state.orphan_conversion_examples)
    if state.orphan_outcomes:
        impossible.insert(0, {"check": "outcome_without_exposure", "count": state.orphan_outcomes,
                              "detail": f"{state.orphan_outcomes} outcome(s) whose request id matches no exposure "
                                        "(left out of every metric; the outcome join rate judges them)",
                              "examples": state.orphan_examples})
    suite = _suite(detail, settings)
    for note in (detail or {}).get("notes", []):
        findings.note(note)
    data: dict[str, Any] = {
        "inputs": {k: str(v) for k, v in paths.items()} | {"experiment_id": settings.experiment_id},
        "lines": [log.to_dict() for log in state.logs.values()],
        "bad_lines": [b.to_dict() for b in state.bad_lines],
        "completeness": completeness,
        "join_integrity": join,
        "exposure_join_rate": join["exposure_join_rate"],
        "outcome_join_rate": join["outcome_join_rate"],
        "assignment_join_rate": join["assignment_join_rate"],
        "duplicates": {"exposure_request_ids": state.duplicate_exposures, "outcomes": state.duplicate_outcomes,
                       "assignment_request_ids": state.duplicate_assignments},
        "variants": variants,
        "guardrails": guardrails,
        "srm": srm,
        "impossible": impossible,
        "orphan_conversions": orphan,
        "decision_detail": detail,
        "settings": settings.to_dict(),
        "thresholds": {"min_join_rate": min_join_rate, "max_relative_lift": max_relative_lift,
                       "max_orphan_conversion_share": max_orphan_conversion_share,
                       "max_missing_rate": max_missing_rate, "srm_alpha": settings.srm_alpha,
                       "srm_min_sample": settings.srm_min_sample,
                       "expected_weights": dict(settings.srm_expected) if settings.srm_expected else None},
        "partitions": state.partitions,
    }
    return verdict("eval.quality", data, findings, str(paths["exposure"]), suite)


def _suite(detail: dict[str, Any] | None, settings: SuiteSettings) -> dict[str, Any]:
    if detail is None:
        return {"decision": None, "reason": "", "line": "none (not an experiment: no assignments given)"}
    if not settings.decision_enabled:
        line = (f"none ({settings.source} does not enable the decision; its rules would give "
                f"{suite_line(detail, settings, 'with these settings')})")
        return {"decision": None, "reason": "", "line": line, "gated": detail["gated"], "ours": settings.ours}
    return {"decision": detail["decision"], "reason": detail["reason"], "gated": detail["gated"], "ours": settings.ours,
            "line": suite_line(detail, settings, f"by the suite's rules with {settings.source}")}


def _join_findings(state: JoinState, join: dict[str, Any], experiment: bool, experiment_id: str | None,
                   min_join_rate: float, findings: Findings) -> None:
    """Problems (the data cannot be trusted) and notes of the lines and the joins."""
    bad_total = sum(log.bad for log in state.logs.values())
    if bad_total:
        findings.problem("schema_break", f"{bad_total} line(s) break the contract, first {state.bad_lines[0]}")
    if state.outcome_count == 0:
        findings.problem("low_join_rate", "no outcomes: nothing joins, every KPI would be 0")
    elif join["outcome_join_rate"] < min_join_rate:
        findings.problem("low_join_rate", f"outcome join rate {join['outcome_join_rate']:.1%} is below "
                                          f"{min_join_rate:.0%} ({state.orphan_outcomes} outcome(s) match no "
                                          f"exposure, e.g. {', '.join(state.orphan_examples[:3])})")
    elif state.orphan_outcomes:
        findings.note(f"{state.orphan_outcomes} outcome(s) match no exposure; they are left out of every metric")
    if experiment:
        if state.assigned_ids == 0:
            findings.problem("low_join_rate", "no assignments" + (f" for experiment {experiment_id}" if experiment_id
                                                                  else "")
                             + (f" (the file has {', '.join(sorted(state.experiments)[:5])})" if state.experiments
                                else ""))
        elif join["assignment_join_rate"] < min_join_rate:
            findings.problem("low_join_rate", f"assignment join rate {join['assignment_join_rate']:.1%} is below "
                                              f"{min_join_rate:.0%}: assigned requests without an exposure")
        if not experiment_id and len(state.experiments) > 1:
            findings.note(f"assignments of {len(state.experiments)} experiments mixed; pass the experiment id")
    findings.note(f"exposure join rate {join['exposure_join_rate']:.1%} is reported, not a trust signal: lists that "
                  "nobody clicked have no outcome, so it cannot exceed the share of lists clicked")


def _srm(state: JoinState, settings: SuiteSettings, findings: Findings) -> dict[str, Any]:
    """Sample ratio mismatch tests, global and per segment. Our verdict always tests; the suite's decision counts
    the global result only when SRM is enabled in its settings."""
    test = {"alpha": settings.srm_alpha, "min_sample": settings.srm_min_sample}
    srm = {**test, "global": srm_test(state.srm_global, settings.srm_expected, **test)}
    if settings.srm_slice_keys:
        srm["by_segment"] = {seg: srm_test(counts, settings.srm_expected, **test)
                             for seg, counts in sorted(state.srm_segments.items())}
        if state.segments_dropped:
            findings.note(f"more than {MAX_SEGMENTS} segments: {state.segments_dropped} assignment(s) of further "
                          "segments were not tested per segment")
    srm_findings(srm, findings)
    if not settings.srm_enabled:
        findings.note(f"SRM is not enabled in {settings.source}: the suite would not test it; this check does")
    return srm
