"""The suite's ship / hold / fail decision: recomputed from figures as ``recsys-eval`` computes it, and read from the
``<report>.decision.json`` the suite writes when a run's decision is enabled.

The rules, exactly as the suite applies them:

- control: the configured ``control_variant`` when it is among the variants, else the variant with the most
  exposures; candidate: the configured ``candidate_variant`` (even when it has no figures), else the variant with
  the most exposures after the control (the first by name among equals);
- primary metrics: the configured ones, lowercased (``ctr`` when none); each one's delta = candidate - control
  (``ctr``, ``conversion_rate`` or ``revenue_per_request``; any other name counts as 0), its threshold the value
  configured under exactly that lowercase name (0 otherwise);
- ``fail`` ("primary metric regression") when a delta is below its threshold; else ``hold`` ("guardrail regression")
  when ``guardrail_gate`` is on and the candidate fails a guardrail; else ``hold`` ("srm detected") when the SRM gate
  is on, SRM is enabled and the global test detected a mismatch; else ``ship``.

Both gates are off in the suite unless configured. ``gated`` in the detail is the same decision with both gates on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput
from recsys_checks.judge.evaluation.settings import SuiteSettings
from recsys_checks.reach.localfiles import read_regular

__all__ = ["DECISIONS", "decide", "decision_file_path", "guardrail_row", "read_decision_file"]

DECISIONS = ("ship", "hold", "fail")
REASONS = ("primary metric regression", "guardrail regression", "srm detected", "")
METRICS = ("ctr", "conversion_rate", "revenue_per_request")
MAX_DECISION_BYTES = 4 * 1024 * 1024
_GUARDRAILS = (("latency_p95_ms", "pass_latency", "max_latency_p95_ms", "p95 latency ms"),
               ("error_rate", "pass_error_rate", "max_error_rate", "error rate"),
               ("empty_rate", "pass_empty_rate", "max_empty_rate", "empty rate"))


def guardrail_row(variant: str, p95: float, error_rate: float, empty_rate: float, settings: SuiteSettings
                  ) -> dict[str, Any]:
    """Guardrails of one variant as the suite's report writes them; a threshold of 0 passes."""
    def ok(value: float, limit: float) -> bool:
        return not limit or value <= limit

    return {"variant": variant, "latency_p95_ms": p95, "error_rate": error_rate, "empty_rate": empty_rate,
            "pass_latency": ok(p95, settings.max_latency_p95_ms),
            "pass_error_rate": ok(error_rate, settings.max_error_rate),
            "pass_empty_rate": ok(empty_rate, settings.max_empty_rate)}


def _control(sizes: Mapping[str, int], configured: str | None) -> tuple[str | None, bool]:
    """The control and whether the pick was a tie (the suite breaks ties by map order, i.e. at random)."""
    if configured and configured in sizes:
        return configured, False
    if not sizes:
        return None, False
    top = max(sizes.values())
    tied = sorted(v for v, n in sizes.items() if n == top)
    return tied[0], len(tied) > 1


def _candidate(sizes: Mapping[str, int], configured: str | None, control: str | None) -> str | None:
    if configured:
        return configured
    ranked = sorted((v for v in sizes if v != control), key=lambda v: (-sizes[v], v))
    return ranked[0] if ranked else None


def _value(row: Mapping[str, Any] | None, metric: str) -> float:
    if not row or metric not in METRICS:
        return 0.0
    value = row.get(metric)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def decide(variants: list[dict[str, Any]], guardrails: list[dict[str, Any]], srm_detected: bool,
           settings: SuiteSettings) -> dict[str, Any]:
    """The suite's decision from variant metrics, the report's guardrail rows and the global SRM result."""
    sizes = {v["variant"]: int(v.get("exposures") or 0) for v in variants}
    control, tie = _control(sizes, settings.control_variant)
    candidate = _candidate(sizes, settings.candidate_variant, control)
    by_name = {v["variant"]: v for v in variants}
    rows, primary_fail = [], False
    for metric in [m.lower() for m in settings.primary_metrics] or ["ctr"]:
        before, after = _value(by_name.get(control), metric), _value(by_name.get(candidate), metric)
        delta = after - before
        threshold = float(settings.primary_thresholds.get(metric, 0.0))
        failed = delta < threshold
        primary_fail = primary_fail or failed
        rows.append({"metric": metric, "control": before, "candidate": after, "delta": delta,
                     "relative_delta": delta / before if before else 0.0, "threshold": threshold,
                     "passed": not failed})
    checked = []
    for g in guardrails:
        if g.get("variant") != candidate:
            continue
        for key, flag, limit, _label in _GUARDRAILS:
            checked.append({"metric": key, "value": g.get(key), "threshold": getattr(settings, limit),
                            "passed": g.get(flag) is not False})
    failed = [f"{label} {g[key]:.4g}" for g in guardrails if g.get("variant") == candidate
              for key, flag, _limit, label in _GUARDRAILS
              if g.get(flag) is False and isinstance(g.get(key), int | float)]
    srm = bool(srm_detected and settings.srm_enabled)

    def outcome(guardrail_gate: bool, srm_gate: bool) -> tuple[str, str]:
        if primary_fail:
            return "fail", "primary metric regression"
        if guardrail_gate and failed:
            return "hold", "guardrail regression"
        if srm_gate and srm:
            return "hold", "srm detected"
        return "ship", ""

    value, reason = outcome(settings.guardrail_gate, settings.srm_gate)
    gated_value, gated_reason = outcome(True, True)
    notes = []
    if tie:
        notes.append(f"variants {', '.join(v for v, n in sizes.items() if n == sizes[control])} tie on exposures: "
                     f"the suite picks its control among them at random; {control} (first by name) is taken here")
    if len(sizes) < 2:
        notes.append(f"{len(sizes)} variant(s): the suite still decides, comparing with a missing variant as 0")
    if candidate is not None and candidate not in sizes:
        notes.append(f"the configured candidate {candidate} has no figures: the suite counts its metrics as 0")
    unused = [k for k in settings.primary_thresholds if k != k.lower()]
    if unused:
        notes.append(f"threshold(s) {', '.join(unused)} are never used: the suite looks them up lowercased")
    odd = [m for m in settings.primary_metrics if m.lower() not in METRICS]
    if odd:
        notes.append(f"primary metric(s) {', '.join(odd)} are not experiment metrics: the suite counts them as 0")
    return {"decision": value, "reason": reason, "control_variant": control, "candidate_variant": candidate,
            "primary_metrics": rows, "guardrails": checked, "failed_guardrails": failed, "srm_detected": srm,
            "guardrail_gate": settings.guardrail_gate, "srm_gate": settings.srm_gate,
            "gated": {"decision": gated_value, "reason": gated_reason}, "notes": notes}


# ------------------------------------------------------------------------------------------------ the suite's file


def decision_file_path(report: Path, settings: SuiteSettings | None) -> list[Path]:
    """Where the suite wrote the decision: ``Decision.OutputPath`` when the run set one (as given, then beside the
    report), else ``<report>.decision.json``."""
    out = []
    if settings and settings.decision_output_path:
        given = Path(settings.decision_output_path)
        out += [given] if given.is_absolute() else [given, report.parent / given, report.parent / given.name]
    out.append(report.with_name(report.name + ".decision.json"))
    return list(dict.fromkeys(out))


def read_decision_file(path: Path) -> dict[str, Any]:
    """The suite's decision artifact: ``decision``, ``reason``, ``control_variant``, ``candidate_variant``,
    ``primary_metrics``, ``guardrails``, ``srm``... Raises :class:`Unreadable` or :class:`BadInput`."""
    raw = read_regular(path, "the decision file", MAX_DECISION_BYTES)
    if len(raw) > MAX_DECISION_BYTES:
        raise BadInput(f"decision file {path} is larger than 4 MiB: not a recsys-eval decision")
    doc = jsonio.load_object(raw, f"decision file {path}")
    if doc.get("decision") not in DECISIONS:
        raise BadInput(f"decision file {path} has decision {doc.get('decision')!r}, not one of ship, hold, fail")
    if not isinstance(doc.get("reason", ""), str):
        raise BadInput(f"decision file {path} has a reason that is not a string")
    for key in ("primary_metrics", "guardrails"):
        rows = doc.get(key)
        if rows is not None and (not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows)):
            raise BadInput(f"decision file {path}: {key} must be a list of objects")
    for row in doc.get("primary_metrics") or []:
        for key in ("delta", "threshold"):
            value = row.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value)):
                raise BadInput(f"decision file {path}: primary_metrics {key} {value!r} is not a number")
    return doc


def suite_detail(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The decision file in the shape of :func:`decide`'s detail, as the suite wrote it."""
    rows = [{"metric": r.get("metric"), "delta": r.get("delta"), "relative_delta": r.get("relative_delta"),
             "threshold": r.get("threshold"),
             "passed": not (isinstance(r.get("delta"), int | float) and isinstance(r.get("threshold"), int | float)
                            and r["delta"] < r["threshold"])}
            for r in doc.get("primary_metrics") or []]
    guardrails = [{"metric": g.get("metric"), "value": g.get("value"), "threshold": g.get("threshold"),
                   "passed": g.get("passed") is not False} for g in doc.get("guardrails") or []]
    srm = doc.get("srm") if isinstance(doc.get("srm"), dict) else None
    return {"decision": doc["decision"], "reason": doc.get("reason") or "",
            "control_variant": doc.get("control_variant"), "candidate_variant": doc.get("candidate_variant"),
            "primary_metrics": rows, "guardrails": guardrails,
            "failed_guardrails": [f"{g['metric']} {g['value']}" for g in guardrails if not g["passed"]],
            "srm_detected": bool(srm and srm.get("detected") is True)}
