"""Our trust verdict, beside the suite's decision: what we found wrong with the data, and why the two differ.

The suite's ``recsys-eval`` decides ship / hold / fail from the figures; it does not ask whether the figures can be
trusted. We do: the data are trusted only when no line broke its contract, the join rates reach ``min_join_rate``,
no SRM is detected, the records are complete, conversions without a click stay below their share and nothing
impossible was found. Each problem carries a cause (:data:`CAUSES`, most fundamental first), so a runbook can name
it. The verdict keeps the two apart: ``suite_decision`` says what the suite decided (or would decide) and on what
authority, ``trust_verdict`` says what we found, and ``difference`` says in one line why acting on the first would
be wrong, when it would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recsys_checks.core.results import CheckResult

__all__ = ["CAUSES", "Findings", "verdict"]

# What makes evaluation data untrusted, most fundamental first: a broken contract explains low joins, low joins
# explain odd lifts.
CAUSES = ("schema_break", "inconsistent_report", "srm", "low_join_rate", "incomplete_data", "aa_check_failed",
          "aa_check_too_small", "orphan_conversion", "impossible_lift")


@dataclass
class Findings:
    """Trust problems (each with its cause) and notes, in the order they were found."""

    problems: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problem(self, cause: str, text: str) -> None:
        if cause not in CAUSES:
            raise ValueError(f"unknown cause {cause}")
        self.problems.append({"cause": cause, "problem": text})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def first_cause(self) -> str | None:
        causes = {p["cause"] for p in self.problems}
        return next((c for c in CAUSES if c in causes), None)


def _said(decision: str | None, reason: str) -> str:
    return f"{decision} ({reason})" if decision and reason else decision or "none"


def _difference(findings: Findings, suite: dict[str, Any]) -> str | None:
    decision, reason = suite.get("decision"), suite.get("reason") or ""
    cause = findings.first_cause()
    if findings.problems:
        if decision == "ship":
            return f"the suite ships, but the data cannot be trusted ({cause}): do not ship on it"
        if decision in ("hold", "fail"):
            return (f"the suite says {_said(decision, reason)}, but on data that cannot be trusted ({cause}) that is "
                    "no evidence either way: fix the data and run the evaluation again")
        if suite.get("verdict"):
            return f"the suite's verdict ({suite['verdict']}) rests on data that cannot be trusted ({cause})"
        return None
    gated = suite.get("gated") or {}
    if decision == "ship" and gated.get("decision") not in (None, "ship"):
        gate = "guardrail gate" if gated.get("reason") == "guardrail regression" else "SRM gate"
        return (f"the suite ships because its {gate} is off; with the gate on it would be "
                f"{_said(gated['decision'], gated.get('reason') or '')}")
    return None


def verdict(check: str, data: dict[str, Any], findings: Findings, target: str | None, suite: dict[str, Any], *,
            undecided: str = "warn") -> CheckResult:
    """The result: ``fail`` when the data cannot be trusted; ``warn`` when trusted but the suite (or the same rules
    with both gates on) does not ship, or, with ``undecided="warn"``, makes no decision; else ``ok``.

    ``suite`` has ``decision`` (ship, hold, fail or None), ``reason``, ``line`` (what the suite says, and on what
    authority), optionally ``gated`` (the decision with both gates on) and ``verdict`` (a mode's verdict that is
    not a decision, e.g. offline gates ``fail``).
    """
    problems = [p["problem"] for p in findings.problems]
    data["trusted"] = not problems
    data["trust_problems"] = problems
    data["trust_causes"] = [p["cause"] for p in findings.problems]
    data["notes"] = findings.notes
    data["decision"] = suite.get("decision")
    data["suite_decision"] = suite["line"]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    data["trust_verdict"] = f"not trusted: {problems[0]}{more}" if problems else "trusted"
    data["difference"] = _difference(findings, suite)
    # Without the run's configuration the decision is ours (the suite's rules with our settings), and says so.
    data["decision_by"] = "ours" if suite.get("ours") else "the suite"
    said = f"our decision (no run configuration given): {suite['line']}" if suite.get("ours") else \
        f"the suite's decision: {suite['line']}"
    if problems:
        summary = f"data cannot be trusted: {problems[0]}{more}; {said}, but do not act on it: hold changes"
        return CheckResult(check, "fail", summary, data, None, target)
    summary = f"data can be trusted; {said}" + (f"; {data['difference']}" if data["difference"] else "")
    decision, gated = suite.get("decision"), (suite.get("gated") or {}).get("decision")
    not_shipping = decision in ("hold", "fail") or gated in ("hold", "fail") or suite.get("verdict_failed")
    if not_shipping or (decision is None and undecided == "warn"):
        return CheckResult(check, "warn", summary, data, None, target)
    return CheckResult(check, "ok", summary, data, None, target)
