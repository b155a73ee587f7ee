"""Triage of a report the suite's ``recsys-eval`` wrote: the suite's decision as the suite reached it, our trust
verdict beside it, each mode judged on what that mode writes.

A report is a JSON object with ``run_id``, ``mode`` (``offline``, ``experiment``, ``ope``, ``interleaving`` or
``aa-check``), ``created_at``, ``version``, ``effective_config``, ``summary``, the mode's own section (``offline``,
``experiment``, ``ope``, ``interleaving`` or ``aa_check``), ``data_quality`` (every mode but interleaving writes it),
``gates`` and ``warnings``. What is read:

- the run's settings from ``effective_config.eval.Experiment`` (control, candidate, primary metrics and thresholds,
  guardrails, SRM, the ``GuardrailGate`` / ``SRMGate`` switches): the figures are judged with **these**, not ours;
- the suite's decision from ``<report>.decision.json`` (or the run's ``Decision.OutputPath``), when it exists: shown
  as the suite's, verbatim; without it the decision is recomputed from the report's figures with the run's settings,
  and said to be recomputed;
- ``data_quality.join_integrity`` and ``*_completeness``; per mode: ``experiment.variants``, ``.guardrails``,
  ``.srm`` (its ``expected`` are weights; the p-value is recomputed from ``observed`` and ``expected``, so a
  mismatch the suite reported as p = 1 is still caught); ``offline.metrics`` and ``gates``; ``ope.estimators``,
  ``.weight_stats``; ``interleaving`` wins, ties and requests; ``aa_check.uniformish``; ``warnings``.

Nothing of ``effective_config`` is shown or recorded unmasked: credentials, DSNs and URL passwords are masked
(:func:`recsys_checks.core.credentials.mask_document`), and the values masked are masked wherever else they appear.
A field of the wrong type is reported as a problem of the report, never guessed. Reads are bounded by
:data:`MAX_REPORT_BYTES`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from recsys_checks.core import credentials, jsonio
from recsys_checks.core.errors import BadInput, ChecksError, Unreadable
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.aacheck import judge_aa
from recsys_checks.judge.evaluation.counts import count_problem, rate_problem, read_count
from recsys_checks.judge.evaluation.decision import decide, decision_file_path, read_decision_file, suite_detail
from recsys_checks.judge.evaluation.plausibility import (
    DEFAULT_MAX_ORPHAN_CONVERSION_SHARE,
    lift_findings,
    orphan_conversions,
)
from recsys_checks.judge.evaluation.quality import DEFAULTS, suite_line
from recsys_checks.judge.evaluation.settings import SUITE, SuiteSettings, from_effective_config
from recsys_checks.judge.evaluation.srm import srm_findings, srm_test
from recsys_checks.judge.evaluation.trust import Findings, verdict
from recsys_checks.reach.localfiles import read_regular

__all__ = ["MAX_REPORT_BYTES", "MODES", "check_eval_report"]

MAX_REPORT_BYTES = 64 * 1024 * 1024
# Each mode, its section, and whether it writes data_quality.
MODES = {"offline": ("offline", True), "experiment": ("experiment", True), "ope": ("ope", True),
         "interleaving": ("interleaving", False), "aa-check": ("aa_check", True)}
_RANKING = ("ndcg", "map", "precision", "recall", "hitrate", "mrr", "coverage")


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        absent = not p.exists() and not p.is_symlink()
    except OSError as exc:  # a name too long, a loop of links
        raise Unreadable(f"cannot read the report {p}: {exc.strerror or exc}") from None
    if absent:
        raise Unreadable(f"report {p} does not exist: check the path recsys-eval wrote (its --output)")
    raw = read_regular(p, "the report", MAX_REPORT_BYTES)
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
    """A finite number as a float; ``None`` for anything else (an integer too large for a float included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _counts(value: Any, where: str, findings: Findings) -> dict[str, int] | None:
    """A map of counts (SRM assignments per variant); ``None`` when it is not one, and a problem of the report when
    one of its values cannot be a count."""
    if not isinstance(value, dict):
        return None
    bad = [(k, problem) for k, v in value.items() if (problem := count_problem(v))]
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        findings.problem("inconsistent_report", f"{where}.{bad[0][0]} {bad[0][1]}{more}: the report's figures cannot "
                                                "be trusted")
        return None
    return {str(k): int(v) for k, v in value.items()}


def check_eval_report(
    path: str | os.PathLike[str],
    *,
    decision_file: str | os.PathLike[str] | None = None,
    min_join_rate: float = DEFAULTS["min_join_rate"],
    max_relative_lift: float | None = DEFAULTS["max_relative_lift"],
    max_orphan_conversion_share: float | None = DEFAULT_MAX_ORPHAN_CONVERSION_SHARE,
    max_missing_rate: float | None = DEFAULTS["max_missing_rate"],
) -> CheckResult:
    """Triage a ``recsys-eval`` report JSON (and its decision file): the suite's decision, our trust verdict.

    ``decision_file``: the suite's decision artifact, when it is not beside the report. ``ok``: trusted and the
    suite ships (or a mode that makes no decision, sound); ``warn``: trusted, but the suite holds or fails, or would
    hold with both gates on; ``fail``: not trusted. An unreadable report raises :class:`BadInput`.
    """
    p = Path(path)
    doc = _read(p)
    config, secrets = credentials.mask_document(doc.get("effective_config"))
    findings = Findings()
    mode = doc.get("mode")
    settings = _settings_of(doc, mode, findings)
    section, writes_quality = _section_of(doc, mode, findings)
    quality = doc.get("data_quality")
    join, rates = _judge_quality(quality, mode, writes_quality, min_join_rate, max_missing_rate, findings)
    out: dict[str, Any] = {"variants": [], "guardrails": [], "srm": None, "impossible": [],
                           "orphan_conversions": None}
    suite, detail, recomputed = _judge_mode(doc, mode, section, p, decision_file, settings, findings, out,
                                            max_relative_lift, max_orphan_conversion_share)
    warnings = doc.get("warnings")
    if isinstance(warnings, list) and warnings:
        findings.note(f"the report carries {len(warnings)} warning(s): {'; '.join(str(w) for w in warnings[:5])}")
    data: dict[str, Any] = {
        "report": str(p),
        "run_id": doc.get("run_id"),
        "mode": mode,
        "created_at": doc.get("created_at"),
        "exposure_join_rate": rates["exposure_join_rate"],
        "outcome_join_rate": rates["outcome_join_rate"],
        "assignment_join_rate": rates["assignment_join_rate"],
        "join_integrity": join,
        "completeness": {k: v for k, v in (quality if isinstance(quality, dict) else {}).items()
                         if k.endswith("_completeness")},
        **out,
        "decision_detail": detail,
        "recomputed_decision": recomputed,
        "decision_source": suite.get("source"),
        "settings": settings.to_dict() if settings else None,
        "effective_config": config,
        "warnings": warnings if isinstance(warnings, list) else [],
        "thresholds": {"min_join_rate": min_join_rate, "max_relative_lift": max_relative_lift,
                       "max_orphan_conversion_share": max_orphan_conversion_share,
                       "max_missing_rate": max_missing_rate},
    }
    result = verdict("eval.report", data, findings, str(p), suite, undecided="ok")
    # Nothing the report's configuration holds as a secret leaves this function, wherever else it appeared.
    return CheckResult(result.check, result.status, credentials.mask_tree(result.summary, extra=secrets),
                       credentials.mask_tree(result.data, extra=secrets), result.state, result.target)


def _settings_of(doc: dict[str, Any], mode: Any, findings: Findings) -> SuiteSettings | None:
    """The run's settings from its ``effective_config`` (None when it records none, or they cannot be read)."""
    try:
        settings = from_effective_config(doc.get("effective_config"))
    except BadInput as exc:
        findings.problem("inconsistent_report", f"the run's settings cannot be read: {exc}")
        settings = None
    if settings is None and mode in ("experiment", "aa-check"):
        findings.note("the report records no effective_config.eval.Experiment: judged with the suite's defaults "
                      "(both gates off)")
    return settings


def _section_of(doc: dict[str, Any], mode: Any, findings: Findings) -> tuple[dict[str, Any] | None, bool]:
    """(the report's section for its mode, None when there is none; whether the mode writes data_quality)."""
    section_name, writes_quality = MODES.get(mode, (None, False)) if isinstance(mode, str) else (None, False)
    section = doc.get(section_name) if section_name else None
    if section_name is None:
        findings.problem("inconsistent_report", f"mode {mode!r} is not one recsys-eval writes "
                                                f"({', '.join(MODES)})")
    elif not isinstance(section, dict):
        findings.problem("inconsistent_report", f"the report says mode {mode} but has no {section_name} section")
        section = None
    return section, writes_quality


def _judge_quality(quality: Any, mode: Any, writes_quality: bool, min_join_rate: float,
                   max_missing_rate: float | None, findings: Findings
                   ) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The report's data quality: its join integrity and join rates (empty when the mode writes none)."""
    join: dict[str, Any] = {}
    rates: dict[str, float | None] = {k: None for k in ("exposure_join_rate", "outcome_join_rate",
                                                         "assignment_join_rate")}
    if quality is not None or writes_quality:
        join, rates = _check_joins(quality, mode in ("experiment", "aa-check"), min_join_rate, findings)
        _check_completeness(quality, max_missing_rate, findings)
    elif mode == "interleaving":
        findings.note("interleaving reports have no data_quality (the mode never writes it): judged on the "
                      "interleaving figures")
    return join, rates


def _judge_mode(doc: dict[str, Any], mode: Any, section: dict[str, Any] | None, p: Path,
                decision_file: str | os.PathLike[str] | None, settings: SuiteSettings | None, findings: Findings,
                out: dict[str, Any], max_relative_lift: float | None, max_orphan_conversion_share: float | None
                ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """(the suite's decision, its detail, the decision recomputed from the figures): each mode's own reading of
    its section; ``out`` gets the figures the result shows."""
    suite: dict[str, Any] = {"decision": None, "reason": "", "line": f"none ({mode} runs make no decision)"}
    if section is None:
        return suite, None, None
    if mode == "experiment":
        run = settings or SUITE
        recomputed = _experiment(section, run, findings, out, max_relative_lift, max_orphan_conversion_share)
        suite, detail = _suite_decision(p, decision_file, run, settings, recomputed, findings)
        return suite, detail, recomputed
    if mode == "offline":
        suite = _offline(doc, section, findings, out)
    elif mode == "ope":
        suite = _ope(section, findings)
    elif mode == "interleaving":
        suite = _interleaving(section, findings)
    elif mode == "aa-check":
        suite = _aa_check(section, findings)
    return suite, None, None


# ------------------------------------------------------------------------------------------------ every mode


def _check_joins(quality: Any, assigned: bool, min_join_rate: float, findings: Findings
                 ) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The report's join integrity and its three join rates; what cannot be trusted goes into ``findings``."""
    join = _get(quality, "join_integrity")
    rates: dict[str, float | None] = {}
    if not isinstance(join, dict):
        findings.problem("inconsistent_report", "the report has no data_quality.join_integrity: its joins cannot be "
                                                "checked")
        join = {}
    for name in ("exposure_join_rate", "outcome_join_rate", "assignment_join_rate"):
        rates[name] = _number(join.get(name))
        if name in join and rates[name] is None:
            findings.problem("inconsistent_report", f"data_quality.join_integrity.{name} is not a number "
                                                    f"({join.get(name)!r})")
    if not join:
        return join, rates
    counts = {k: read_count(join.get(k), f"data_quality.join_integrity.{k}", findings)
              for k in ("exposure_count", "outcome_count", "assignments_count", "duplicate_exposure_request_ids")}
    outcome_count = counts["outcome_count"]
    if outcome_count == 0:
        findings.problem("low_join_rate", "no outcomes: nothing joins, every KPI is 0")
    elif rates["outcome_join_rate"] is not None and rates["outcome_join_rate"] < min_join_rate:
        findings.problem("low_join_rate", f"outcome join rate {rates['outcome_join_rate']:.1%} is below "
                                          f"{min_join_rate:.0%}: outcomes whose request id matches no exposure")
    assignments = counts["assignments_count"]
    if assigned:
        if not assignments:
            findings.problem("low_join_rate", "no assignments joined: the experiment's id matches no assignment")
        elif rates["assignment_join_rate"] is not None and rates["assignment_join_rate"] < min_join_rate:
            findings.problem("low_join_rate", f"assignment join rate {rates['assignment_join_rate']:.1%} is below "
                                              f"{min_join_rate:.0%}")
    else:
        rates["assignment_join_rate"] = None  # the suite writes 0 where there are no assignments: not a rate
    if rates["exposure_join_rate"] is not None:
        findings.note(f"exposure join rate {rates['exposure_join_rate']:.1%} is reported, not a trust signal: "
                      "lists that nobody clicked have no outcome")
    if counts["duplicate_exposure_request_ids"]:
        findings.note(f"{counts['duplicate_exposure_request_ids']} duplicate exposure request id(s): the first won")
    return join, rates


def _check_completeness(quality: Any, max_missing_rate: float | None, findings: Findings) -> None:
    if not isinstance(quality, dict) or max_missing_rate is None:
        return
    for key, what in (("exposure_completeness", "exposures without a request id or items"),
                      ("outcome_completeness", "outcomes without a request id or item id"),
                      ("assignment_completeness", "assignments without a request id or variant")):
        section = quality.get(key)
        if not isinstance(section, dict):
            continue
        missing_rate = _number(section.get("missing_rate"))
        if missing_rate is not None and missing_rate > max_missing_rate:
            findings.problem("incomplete_data", f"{section.get('missing')} of {section.get('total')} {what} "
                                                f"({missing_rate:.1%}), above {max_missing_rate:.0%}")


# ------------------------------------------------------------------------------------------------ experiment


def _experiment(section: dict[str, Any], settings: SuiteSettings, findings: Findings, out: dict[str, Any],
                max_relative_lift: float | None, max_orphan_share: float | None) -> dict[str, Any]:
    """Variants, guardrails and SRM into ``out``; returns the decision recomputed with the run's settings."""
    variants: list[dict[str, Any]] = out["variants"]
    for v in section.get("variants") or []:
        if not isinstance(v, dict) or not isinstance(v.get("variant"), str):
            findings.problem("inconsistent_report", "experiment.variants has an entry without a variant name")
            continue
        row: dict[str, Any] = {"variant": v["variant"]}
        for key in ("exposures", "clicks", "conversions"):
            row[key] = read_count(v.get(key), f"experiment variant {v['variant']} {key}", findings)
        for key in ("ctr", "conversion_rate", "revenue_per_request"):
            problem = rate_problem(v.get(key))
            if problem:
                findings.problem("inconsistent_report", f"experiment variant {v['variant']} {key} {problem}")
            row[key] = _number(v.get(key))
        variants.append(row)
        clicks, exposures = row["clicks"], row["exposures"]
        if clicks is not None and exposures and clicks > exposures:
            out["impossible"].append({"check": "more_clicks_than_exposures", "count": 1, "examples": [],
                                      "detail": f"variant {v['variant']} has {clicks:g} clicks on {exposures:g} "
                                                "exposures (CTR above 1): a join that double counts"})
    for g in _get(section, "guardrails", "per_variant") or []:
        if isinstance(g, dict) and isinstance(g.get("variant"), str):
            out["guardrails"].append({"variant": g["variant"],
                                      **{k: _number(g.get(k)) for k in ("latency_p95_ms", "error_rate",
                                                                         "empty_rate")},
                                      **{k: g.get(k) is not False for k in ("pass_latency", "pass_error_rate",
                                                                            "pass_empty_rate")}})
    srm = section.get("srm")
    srm_detected = False
    if isinstance(srm, dict):
        out["srm"] = _srm(srm, findings)
        srm_findings(out["srm"], findings)
        srm_detected = bool((out["srm"].get("global") or {}).get("reported_detected"))
    else:
        findings.note("the report has no SRM section: SRM was not enabled in this run, so the split was not tested")
    # The suite's decision uses the global SRM result it wrote, not our recomputation; a report with an SRM section
    # comes from a run with SRM enabled, whatever else was recorded.
    if isinstance(srm, dict) and not settings.srm_enabled:
        settings = settings.override(srm_enabled=True)
    detail = decide(variants, out["guardrails"], srm_detected, settings)
    out["impossible"] += lift_findings(detail, variants, max_relative_lift)
    for finding in out["impossible"]:
        findings.problem("impossible_lift", f"impossible: {finding['detail']}")
    extra = sum(max((v["conversions"] or 0) - (v["clicks"] or 0), 0) for v in variants)
    total = sum(v["conversions"] or 0 for v in variants)
    out["orphan_conversions"] = orphan_conversions(int(extra), int(total), max_orphan_share, findings,
                                                   at_least=True)
    return detail


def _srm(srm: dict[str, Any], findings: Findings) -> dict[str, Any]:
    alpha = _number(srm.get("alpha")) or 0.001
    min_sample = int(_number(srm.get("min_sample")) or 0)
    out: dict[str, Any] = {"alpha": alpha, "min_sample": min_sample, "by_segment": {}}
    by_segment = srm.get("by_segment")
    sections = [("global", srm.get("global"))] + (sorted(by_segment.items()) if isinstance(by_segment, dict) else [])
    for name, section in sections:
        if not isinstance(section, dict):
            continue
        observed = _counts(section.get("observed"), f"experiment.srm.{name}.observed", findings)
        weights = _weights(section.get("expected"))
        reported = section.get("detected") is True
        result: dict[str, Any] = {"reported_detected": reported, "reported_p_value": _number(section.get("p_value"))}
        if observed is not None:
            try:
                result.update(srm_test(observed, weights or None, alpha=alpha, min_sample=min_sample))
            except ChecksError:
                result["expected"] = section.get("expected")  # weights the test refuses: the report's flag stands
        result["detected"] = reported or bool(result.get("detected"))
        if name == "global":
            out["global"] = result
        else:
            out["by_segment"][name] = result
    return out


def _weights(value: Any) -> dict[str, float] | None:
    """SRM weights as written (``expected``); ``None`` when they are not all finite numbers."""
    if not isinstance(value, dict) or not all(_number(v) is not None for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


def _suite_decision(report: Path, given: str | os.PathLike[str] | None, run: SuiteSettings,
                    settings: SuiteSettings | None, recomputed: dict[str, Any], findings: Findings
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The suite's decision: its decision file when there is one, else the recomputation, said to be one."""
    candidates = [Path(given)] if given else decision_file_path(report, settings)
    found = next((c for c in candidates if c.exists()), None)
    if given and found is None:
        raise Unreadable(f"decision file {given} does not exist")
    for note in recomputed.get("notes", []):
        findings.note(note)
    if found is not None:
        try:
            doc = read_decision_file(found)
        except Unreadable:
            raise
        except BadInput as exc:
            findings.problem("inconsistent_report", f"the decision file cannot be read as the suite's: {exc}")
            doc = None
        if doc is not None:
            detail = suite_detail(doc)
            differs = [k for k in ("decision", "reason", "candidate_variant") if detail[k] != recomputed[k]]
            tie = any("tie on exposures" in n for n in recomputed.get("notes", []))
            if detail["control_variant"] != recomputed["control_variant"] and not tie:
                differs.append("control_variant")
            if differs:
                findings.problem("inconsistent_report", f"the decision file says {_word(detail)} (control "
                                                        f"{detail['control_variant']}, candidate "
                                                        f"{detail['candidate_variant']}), but the report's figures "
                                                        f"with its settings give {_word(recomputed)} (control "
                                                        f"{recomputed['control_variant']}, candidate "
                                                        f"{recomputed['candidate_variant']}): is it from another run?")
            line = f"{_word(detail)}, from the suite's decision file {found.name} ({run.gates_text()})"
            return ({"decision": detail["decision"], "reason": detail["reason"], "line": line,
                     "gated": recomputed["gated"], "source": str(found)}, detail)
    if settings is not None and not settings.decision_enabled:
        line = (f"none (the run's Decision is not enabled, so the suite decided nothing; its rules on these "
                f"figures give {suite_line(recomputed, run, 'with the run settings')})")
        return {"decision": None, "reason": "", "line": line, "gated": recomputed["gated"], "source": None}, recomputed
    why = "the run enabled a decision but its file was not found" if settings is not None else \
        "no decision file, no recorded settings"
    line = suite_line(recomputed, run, f"recomputed from the report with {run.source} ({why})")
    return ({"decision": recomputed["decision"], "reason": recomputed["reason"], "line": line,
             "gated": recomputed["gated"], "source": "recomputed"}, recomputed)


def _word(detail: dict[str, Any]) -> str:
    return detail["decision"] + (f" ({detail['reason']})" if detail.get("reason") else "")


# ------------------------------------------------------------------------------------------------ other modes


def _offline(doc: dict[str, Any], section: dict[str, Any], findings: Findings, out: dict[str, Any]
             ) -> dict[str, Any]:
    """Offline: metrics in range; the suite's verdict is its regression gates (pass, fail or not configured)."""
    for m in section.get("metrics") or []:
        if not isinstance(m, dict):
            continue
        name, value = str(m.get("name", "")), m.get("value")
        if _number(value) is None:
            findings.problem("inconsistent_report", f"offline metric {name} is not a number ({value!r})")
        elif name.lower().split("@")[0] in _RANKING and not 0 <= value <= 1:
            out["impossible"].append({"check": "metric_out_of_range", "count": 1, "examples": [],
                                      "detail": f"offline metric {name} is {value:g}, outside [0, 1]"})
            findings.problem("impossible_lift", f"impossible: offline metric {name} is {value:g}, outside [0, 1]")
    gates = [g for g in doc.get("gates") or [] if isinstance(g, dict)]
    failed = [g for g in gates if g.get("passed") is False]
    said = _get(doc, "summary", "executive", "decision")
    if not isinstance(said, str):
        said = ("fail" if failed else "pass") if gates else "not_configured"
    out["gates"] = gates
    if said == "fail":
        what = "; ".join(f"{g.get('metric')} delta {g.get('delta')} beyond max_drop {g.get('max_drop')}"
                         for g in failed[:3])
        line = f"regression gates fail ({what or 'as its executive summary says'})"
    elif said == "pass":
        line = f"regression gates pass ({len(gates)} gate(s))"
    else:
        line = "no regression gates configured (an offline run makes no ship decision)"
    return {"decision": None, "reason": "", "line": line, "verdict": f"gates {said}", "verdict_failed": said == "fail",
            "source": "the report's gates"}


def _ope(section: dict[str, Any], findings: Findings) -> dict[str, Any]:
    estimators = [e for e in section.get("estimators") or [] if isinstance(e, dict)]
    for e in estimators:
        if _number(e.get("value")) is None:
            findings.problem("inconsistent_report", f"OPE estimator {e.get('name')} has no finite value "
                                                    f"({e.get('value')!r})")
    stats = section.get("weight_stats") if isinstance(section.get("weight_stats"), dict) else {}
    shown = ", ".join(f"{e.get('name')} {e.get('value'):.4g}" for e in estimators if _number(e.get("value")) is not None)
    ess = _number(stats.get("effective_sample_size"))
    return {"decision": None, "reason": "",
            "line": f"none (an OPE run estimates, it does not decide: {shown or 'no estimator'}"
                    + (f"; effective sample size {ess:g} of {stats.get('count')}" if ess is not None else "") + ")",
            "source": None}


def _interleaving(section: dict[str, Any], findings: Findings) -> dict[str, Any]:
    """Interleaving: the counts must add up; the suite makes no decision, it reports who won."""
    figures: dict[str, float | None] = {k: _number(section.get(k)) for k in ("win_rate_a", "win_rate_b", "p_value")}
    for key in ("requests", "wins_a", "wins_b", "ties"):
        if section.get(key) is None:
            findings.problem("inconsistent_report", f"interleaving.{key} is missing")
        figures[key] = read_count(section.get(key), f"interleaving.{key}", findings)
    requests, a, b, ties = (figures[k] for k in ("requests", "wins_a", "wins_b", "ties"))
    if None in (requests, a, b, ties):
        return {"decision": None, "reason": "", "line": "none (interleaving figures unreadable)", "source": None}
    if requests == 0:
        findings.problem("low_join_rate", "interleaving compared no request: no request id is in both rankers' lists")
    elif a + b + ties != requests:
        findings.problem("inconsistent_report", f"interleaving wins and ties ({a:g} + {b:g} + {ties:g}) do not add "
                                                f"up to its {requests:g} requests")
    for key in ("win_rate_a", "win_rate_b", "p_value"):
        value = figures[key]
        if value is not None and not 0 <= value <= 1:
            findings.problem("impossible_lift", f"impossible: interleaving.{key} is {value:g}, outside [0, 1]")
    if a + b > 0 and figures["win_rate_a"] is not None and abs(figures["win_rate_a"] - a / (a + b)) > 1e-9:
        findings.problem("inconsistent_report", f"interleaving.win_rate_a {figures['win_rate_a']:g} is not "
                                                f"wins_a / (wins_a + wins_b) = {a / (a + b):g}")
    p = figures["p_value"]
    names = (section.get("ranker_a") or "A", section.get("ranker_b") or "B")
    leader = names[0] if a > b else names[1] if b > a else None
    won = f"{leader} wins {max(a, b):g} of {a + b:g} decided requests" if leader else "no ranker wins"
    return {"decision": None, "reason": "", "source": None,
            "line": f"none (interleaving reports who wins: {won}, {ties:g} ties, "
                    f"p = {p:.3g})" if p is not None else f"none (interleaving reports who wins: {won})"}


def _aa_check(section: dict[str, Any], findings: Findings) -> dict[str, Any]:
    """A/A: judged from its p-value counts (see :mod:`recsys_checks.judge.evaluation.aacheck`), never from
    ``uniformish`` alone, which is always true below 20 tests."""
    uniform, total = section.get("uniformish"), section.get("total_tests")
    counts = _aa_counts(section)
    if counts is None or not isinstance(total, int) or isinstance(total, bool) or total < 0 or \
            any(v > total for v in counts.values()):
        findings.problem("inconsistent_report", "aa_check has no readable p-value counts (metrics[].counts, "
                                                "total_tests): the A/A cannot be judged")
        return {"decision": None, "reason": "", "source": None, "line": "none (an A/A check makes no decision)"}
    judged = judge_aa(counts, total)
    if judged.biased:
        findings.problem("aa_check_failed", f"the A/A check finds differences where there are none: "
                                            f"{judged.text()}; assignment or metrics are biased, so no A/B result on "
                                            "this setup can be trusted")
    elif not judged.judgeable:
        findings.problem("aa_check_too_small", f"the A/A check cannot be judged: {judged.text()}")
    if uniform is True and judged.biased:
        findings.note("the suite's uniformish says true: it skips every threshold whose expected count is below 1, "
                      f"so with {total} tests it cannot say otherwise")
    elif uniform is False and not judged.biased:
        findings.note("the suite's uniformish says false; the p-value counts themselves are within chance")
    return {"decision": None, "reason": "", "source": None,
            "line": f"none (an A/A check makes no decision: {judged.text()})", "aa": [dict(r) for r in judged.rows]}


def _aa_counts(section: dict[str, Any]) -> dict[float, int] | None:
    """Tests below each threshold, summed over the metrics; ``None`` when the counts cannot be read."""
    out: dict[float, int] = {}
    for metric in section.get("metrics") or []:
        raw = metric.get("counts") if isinstance(metric, dict) else None
        if not isinstance(raw, dict):
            return None
        for key, value in raw.items():
            alpha = _threshold(key)
            if alpha is None or not 0 < alpha < 1 or not isinstance(value, int) or isinstance(value, bool) \
                    or value < 0:
                return None
            out[alpha] = out.get(alpha, 0) + value
    return out or None


def _threshold(key: Any) -> float | None:
    """A count's threshold: the report writes it as a JSON key (``"0.05"``)."""
    try:
        value = float(key)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
