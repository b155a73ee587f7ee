"""Triage of a report the suite's ``recsys-eval`` already wrote: the same trust questions, from its JSON.

The suite's report is a JSON object (``run_id``, ``mode``, ``created_at``, ``version``, ``summary`` required, more
allowed). These fields are read, each where it is present, and anything else is ignored:

- ``data_quality.join_integrity``: ``exposure_count``, ``outcome_count``, ``assignments_count``,
  ``duplicate_exposure_request_ids``, ``exposure_join_rate``, ``outcome_join_rate``, ``assignment_join_rate``;
  ``data_quality.*_completeness``: ``total``, ``missing``, ``missing_rate``.
- ``experiment.variants[]``: ``variant``, ``exposures``, ``clicks``, ``conversions``, ``ctr``,
  ``conversion_rate``, ``revenue_per_request``; ``experiment.guardrails.per_variant[]``: ``variant``,
  ``latency_p95_ms``, ``error_rate``, ``empty_rate``, ``pass_latency``, ``pass_error_rate``, ``pass_empty_rate``.
- ``experiment.srm``: ``alpha``, ``min_sample``, ``global`` and ``by_segment`` with ``p_value``, ``observed``,
  ``expected``, ``detected``, ``sample_size``. The p-value is recomputed from ``observed`` and ``expected``, so a
  mismatch the suite missed (it reports p = 1 when a variant has no expected weight) is still caught.
- ``summary.executive.decision`` when the report carries one; ``warnings``.

A field of the wrong type is reported as a problem of the report, never guessed. Reads are bounded by
:data:`MAX_REPORT_BYTES`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, Unreadable
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.quality import DEFAULTS, decide, lift_findings, srm_test, verdict
from recsys_checks.reach.localfiles import open_regular

__all__ = ["MAX_REPORT_BYTES", "check_eval_report"]

MAX_REPORT_BYTES = 64 * 1024 * 1024


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        absent = not p.exists() and not p.is_symlink()
    except OSError as exc:  # a name too long, a loop of links
        raise Unreadable(f"cannot read the report {p}: {exc.strerror or exc}") from None
    if absent:
        raise Unreadable(f"report {p} does not exist: check the path recsys-eval wrote (its --output)")
    try:
        with open_regular(p, "report") as fh:
            raw = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read the report {p}: {exc.strerror}") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise BadInput(f"report {p} is larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB: not a recsys-eval report")
    try:
        doc = jsonio.load_object(raw, f"report {p}")
    except BadInput as exc:
        raise BadInput(f"{exc}: not a recsys-eval report; was it written with --output-format json?") from None
    missing = [k for k in ("mode", "summary") if k not in doc]
    if missing:
        raise BadInput(f"report {p} has no {missing[0]!r}: not a recsys-eval report")
    return doc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _counts(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict) or not all(_number(v) is not None for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


def check_eval_report(
    path: str | os.PathLike[str],
    *,
    min_join_rate: float = DEFAULTS["min_join_rate"],
    max_relative_lift: float | None = DEFAULTS["max_relative_lift"],
) -> CheckResult:
    """Triage a ``recsys-eval`` report JSON: joins, SRM, guardrails, impossible figures, the decision.

    Same verdict as :func:`recsys_checks.judge.evaluation.quality.check_eval_quality`: ``ok`` trusted and ship, ``warn`` trusted but
    not ship, ``fail`` not trusted. An unreadable file raises :class:`BadInput`.
    """
    doc = _read(path)
    problems: list[str] = []
    notes: list[str] = []
    mode = doc.get("mode")
    experiment = doc.get("experiment") if isinstance(doc.get("experiment"), dict) else None
    join, rates = _check_joins(doc, experiment is not None or mode == "experiment", min_join_rate, problems, notes)
    variants: list[dict[str, Any]] = []
    guardrails: list[dict[str, Any]] = []
    srm_out: dict[str, Any] | None = None
    impossible: list[dict[str, Any]] = []
    srm_detected = False
    if experiment is not None:
        variants, impossible = _variant_rows(experiment, problems)
        for g in _get(experiment, "guardrails", "per_variant") or []:
            if isinstance(g, dict) and isinstance(g.get("variant"), str):
                guardrails.append({"variant": g["variant"],
                                   **{k: _number(g.get(k)) for k in ("latency_p95_ms", "error_rate", "empty_rate")},
                                   **{k: g.get(k) is not False for k in ("pass_latency", "pass_error_rate",
                                                                         "pass_empty_rate")}})
        srm = experiment.get("srm")
        if isinstance(srm, dict):
            srm_out, srm_detected = _srm(srm, problems)
        elif mode == "experiment":
            notes.append("the report has no SRM section: SRM was not checked by recsys-eval (enable srm)")
    decision = decide(variants, guardrails, srm_detected) if variants else None
    impossible += lift_findings(decision, variants, max_relative_lift)
    for finding in impossible:
        problems.append(f"impossible: {finding['detail']}")
    reported = _get(doc, "summary", "executive", "decision")
    if isinstance(reported, str) and decision and reported != decision["decision"]:
        notes.append(f"the report's own decision is {reported}; its figures give {decision['decision']} with the "
                     "default primary metric (ctr) and thresholds")
    warnings = doc.get("warnings")
    if isinstance(warnings, list) and warnings:
        notes.append(f"the report carries {len(warnings)} warning(s): {'; '.join(str(w) for w in warnings[:3])}")
    data: dict[str, Any] = {
        "report": str(path),
        "run_id": doc.get("run_id"),
        "mode": mode,
        "created_at": doc.get("created_at"),
        "exposure_join_rate": rates["exposure_join_rate"],
        "outcome_join_rate": rates["outcome_join_rate"],
        "assignment_join_rate": rates["assignment_join_rate"],
        "join_integrity": join,
        "completeness": {k: v for k, v in (_get(doc, "data_quality") or {}).items() if k.endswith("_completeness")},
        "variants": variants,
        "guardrails": guardrails,
        "srm": srm_out,
        "impossible": impossible,
        "decision_detail": decision,
        "reported_decision": reported if isinstance(reported, str) else None,
        "notes": notes,
        "thresholds": {"min_join_rate": min_join_rate, "max_relative_lift": max_relative_lift},
    }
    return verdict("eval.report", data, problems, str(path))


def _check_joins(doc: dict[str, Any], experiment: bool, min_join_rate: float, problems: list[str],
                 notes: list[str]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The report's join integrity and its three join rates; what cannot be trusted goes into ``problems``."""
    join = _get(doc, "data_quality", "join_integrity")
    rates: dict[str, float | None] = {}
    if not isinstance(join, dict):
        problems.append("the report has no data_quality.join_integrity: its joins cannot be checked")
        join = {}
    for name in ("exposure_join_rate", "outcome_join_rate", "assignment_join_rate"):
        rates[name] = _number(join.get(name))
        if name in join and rates[name] is None:
            problems.append(f"data_quality.join_integrity.{name} is not a number ({join.get(name)!r})")
    outcome_count = _number(join.get("outcome_count"))
    if join:
        if outcome_count == 0:
            problems.append("no outcomes: nothing joins, every KPI is 0")
        elif rates["outcome_join_rate"] is not None and rates["outcome_join_rate"] < min_join_rate:
            problems.append(f"outcome join rate {rates['outcome_join_rate']:.1%} is below {min_join_rate:.0%}: "
                            "outcomes whose request id matches no exposure")
        assignments = _number(join.get("assignments_count"))
        if experiment and rates["assignment_join_rate"] is not None and \
                (assignments or 0) > 0 and rates["assignment_join_rate"] < min_join_rate:
            problems.append(f"assignment join rate {rates['assignment_join_rate']:.1%} is below {min_join_rate:.0%}")
        if rates["exposure_join_rate"] is not None:
            notes.append(f"exposure join rate {rates['exposure_join_rate']:.1%} is reported, not a trust signal: "
                         "lists that nobody clicked have no outcome")
        if join.get("duplicate_exposure_request_ids"):
            notes.append(f"{join['duplicate_exposure_request_ids']} duplicate exposure request id(s): the first won")
    return join, rates


def _variant_rows(experiment: dict[str, Any],
                  problems: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The experiment's variants with their figures, and the impossible figures among them."""
    variants: list[dict[str, Any]] = []
    impossible: list[dict[str, Any]] = []
    for v in experiment.get("variants") or []:
        if not isinstance(v, dict) or not isinstance(v.get("variant"), str):
            problems.append("experiment.variants has an entry without a variant name")
            continue
        row = {"variant": v["variant"]}
        for key in ("exposures", "clicks", "conversions", "ctr", "conversion_rate", "revenue_per_request"):
            row[key] = _number(v.get(key))
        variants.append(row)
        clicks, conv, exposures = row["clicks"], row["conversions"], row["exposures"]
        if clicks is not None and exposures and clicks > exposures:
            impossible.append({"check": "more_clicks_than_exposures", "count": 1, "examples": [],
                               "detail": f"variant {v['variant']} has {clicks:g} clicks on {exposures:g} "
                                         "exposures (CTR above 1): a join that double counts"})
        if clicks is not None and conv is not None and conv > clicks:
            impossible.append({"check": "more_conversions_than_clicks", "count": 1, "examples": [],
                               "detail": f"variant {v['variant']} has {conv:g} conversions but {clicks:g} "
                                         "clicks"})
    return variants, impossible


def _srm(srm: dict[str, Any], problems: list[str]) -> tuple[dict[str, Any], bool]:
    alpha = _number(srm.get("alpha")) or DEFAULTS["srm_alpha"]
    min_sample = int(_number(srm.get("min_sample")) or 0)
    out: dict[str, Any] = {"alpha": alpha, "min_sample": min_sample, "by_segment": {}}
    detected_any = False
    by_segment = srm.get("by_segment")
    sections = [("global", srm.get("global"))] + (sorted(by_segment.items()) if isinstance(by_segment, dict) else [])
    for name, section in sections:
        if not isinstance(section, dict):
            continue
        observed, expected = _counts(section.get("observed")), _counts(section.get("expected"))
        reported = section.get("detected") is True
        result: dict[str, Any] = {"reported_detected": reported, "reported_p_value": _number(section.get("p_value"))}
        if observed is not None:
            check = srm_test({k: int(v) for k, v in observed.items()}, expected or None, alpha=alpha,
                             min_sample=min_sample)
            result.update(check)
        detected = reported or bool(result.get("detected"))
        result["detected"] = detected
        where = "" if name == "global" else f" in segment {name}"
        if detected:
            detected_any = True
            p = result.get("p_value", result["reported_p_value"])
            problems.append(f"sample ratio mismatch{where}: p = {p:.3g} < {alpha:g}"
                            + ("" if reported else " (recomputed; the report said none)"))
        if result.get("unexpected_variants"):
            problems.append(f"assignments{where} to variant(s) {', '.join(result['unexpected_variants'])} without "
                            "an expected weight")
        if name == "global":
            out["global"] = result
        else:
            out["by_segment"][name] = result
    return out, detected_any
