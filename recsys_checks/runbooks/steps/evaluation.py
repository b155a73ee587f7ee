"""Steps of the evaluation runbooks: can the evaluation data be trusted, and the "stop shipping" hold lever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import ChecksError, Unreadable
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.quality import check_eval_quality
from recsys_checks.judge.evaluation.report import check_eval_report
from recsys_checks.judge.evaluation.settings import from_config_file
from recsys_checks.judge.evaluation.trust import CAUSES
from recsys_checks.judge.registry.hold import check_hold
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.steps.fix import command_argv, diagnosis, run_command

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

# What makes evaluation data untrusted, most fundamental first (the checks name each problem's cause): a broken
# contract explains low joins, low joins explain odd lifts.
_CAUSES = CAUSES


def _path(run: RunbookRun, name: str) -> str | None:
    value = str(run.params.get(name) or "").strip()
    return value.replace("{tenant}", run.tenant).replace("{surface}", run.surface) or None


def _where(run: RunbookRun) -> str:
    return f"{run.tenant}/{run.surface}"


def _read(run: RunbookRun, check: str, what: str, call: Callable[[], CheckResult]) -> CheckResult:
    """``call()`` marked as given; a file that could not be opened or read is a ``fail`` marked ``unread`` (nothing
    is known about the data: inconclusive, never a cause); content that breaks its contract is untrusted."""
    try:
        result = call()
    except Unreadable as exc:
        message = f"{what} could not be read: {run.redact(str(exc))}"
        return CheckResult(check, "fail", message, {"given": True, "not_read": message, "trusted": None}, None,
                           _where(run), unread=message)
    except ChecksError as exc:
        message = f"{what} cannot be read: {run.redact(str(exc))}"
        return CheckResult(check, "fail", message, {"given": True, "unreadable": str(exc), "trusted": False}, None,
                           _where(run), unread=message)
    result.data["given"] = True
    return result


_DEFAULTS = {"min_join_rate": 0.95, "max_relative_lift": 0.5, "max_orphan_conversion_share": 0.5}


def _thresholds(run: RunbookRun) -> dict[str, float]:
    # Checked against the spec's range when parsed; 0 for max_relative_lift means off, as on the command line.
    return {name: float(default if run.params.get(name) is None else run.params[name])
            for name, default in _DEFAULTS.items()}


def data_quality(run: RunbookRun) -> CheckResult:
    """Read the exposure, outcome (and assignment) logs in the suite's contracts: joins, SRM, guardrails, lifts."""
    exposures, outcomes = _path(run, "exposures"), _path(run, "outcomes")
    if not exposures or not outcomes:
        return CheckResult("eval.quality", "ok", "no evaluation logs given (exposures and outcomes): not checked",
                           {"given": False}, None, _where(run))
    experiment = str(run.params.get("experiment_id") or "") or None
    config = _path(run, "eval_config")
    result = _read(run, "eval.quality", "the evaluation logs", lambda: check_eval_quality(
        exposures, outcomes, _path(run, "assignments"), experiment,
        settings=from_config_file(config) if config else None, **_thresholds(run)))
    pictures.evaluation(run, result)
    return result


def report_triage(run: RunbookRun) -> CheckResult:
    """Triage the report recsys-eval wrote (its data quality, joins, SRM and metrics), when one is given."""
    report = _path(run, "report")
    if not report:
        return CheckResult("eval.report", "ok", "no recsys-eval report given: not checked", {"given": False}, None,
                           _where(run))
    return _read(run, "eval.report", "the report", lambda: check_eval_report(Path(report), **_thresholds(run)))


def hold_state(run: RunbookRun) -> CheckResult:
    """Is publishing held for the surface (the marker beside its manifest)?"""
    try:
        return check_hold(run.target, run.tenant, run.surface)
    except ChecksError as exc:
        message = f"the hold marker cannot be read: {run.redact(str(exc))}"
        return CheckResult("hold.status", "fail", message, {"held": None, "error": str(exc)}, None, _where(run),
                           unread=message)


def _held(result: Any) -> bool | None:
    if not isinstance(result, CheckResult):
        return None
    held = result.data.get("held")
    return bool(held) if held is not None else None


def untrusted_cause(result: CheckResult) -> str | None:
    """Which of the known problems makes the data untrusted (``None`` when trusted or not checked)."""
    data = result.data
    if not data.get("given") or data.get("not_read") or data.get("trusted", True):
        return None  # trusted, not checked, or not read: nothing known about the data is wrong
    if data.get("unreadable") or data.get("bad_lines"):
        return "schema_break"
    named = [c for c in data.get("trust_causes") or [] if c in _CAUSES]
    if named:  # the check named each problem's cause: the most fundamental one
        return next(c for c in _CAUSES if c in named)
    srm = data.get("srm") or {}
    if isinstance(srm, dict) and ((srm.get("global") or {}).get("detected") or srm.get("detected")):
        return "srm"
    threshold = float((data.get("thresholds") or {}).get("min_join_rate") or 0.95)
    for name in ("outcome_join_rate", "assignment_join_rate"):
        rate = data.get(name)
        if isinstance(rate, int | float) and rate < threshold:
            return "low_join_rate"
    if data.get("impossible"):
        return "impossible_lift"
    return "untrusted"


def _evidence(*results: Any) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        if isinstance(result, CheckResult):
            for problem in result.data.get("trust_problems") or []:
                rows.append({"source": result.check, "problem": problem})
    return rows


def diagnose_eval_data(run: RunbookRun) -> CheckResult:
    """Untrusted data is a data problem, never a win: name it, and hold shipping for the surface until it is fixed."""
    quality, report, hold = run.result("quality"), run.result("report"), run.result("hold")
    causes = [untrusted_cause(r) for r in (quality, report) if isinstance(r, CheckResult)]
    found = next((c for c in _CAUSES + ("untrusted",) if c in causes), None)
    evidence = _evidence(quality, report)
    not_read = [r for r in (quality, report) if isinstance(r, CheckResult) and r.data.get("not_read")]
    if found is None and not_read:
        return diagnosis(run, "the evaluation data cannot be judged: " + "; ".join(r.summary for r in not_read))
    if found is None:
        checked = [r for r in (quality, report) if isinstance(r, CheckResult) and r.data.get("given")]
        if not checked:
            return diagnosis(run, "no evaluation data or report given: nothing to judge")
        return diagnosis(run, "the evaluation data can be trusted: " + "; ".join(r.summary for r in checked))
    first = evidence[0]["problem"] if evidence else found
    summary = f"the evaluation data cannot be trusted ({found}): {first}"
    if _held(hold):
        summary += "; the surface is already held"
    return diagnosis(run, summary, cause=found, evidence=evidence,
                     lever_args={"held": True, "reason": f"evaluation data untrusted: {found}"})


def diagnose_hold(run: RunbookRun) -> CheckResult:
    """Hold, clear, or leave the hold as it is: as asked, or (``auto``) as the evaluation data warrants."""
    action = str(run.params.get("action") or "auto")
    held = _held(run.result("hold"))
    quality = run.result("quality")
    if held is None:
        return diagnosis(run, "the hold state cannot be read", cause="hold_unreadable")
    if action == "auto" and isinstance(quality, CheckResult) and quality.data.get("not_read"):
        state = "held" if held else "not held"
        return diagnosis(run, f"{run.tenant}/{run.surface} is {state}; the evaluation data cannot be judged, so the "
                         f"hold is left as it is: {quality.summary}")
    if action == "auto":
        cause = untrusted_cause(quality) if isinstance(quality, CheckResult) else None
        want = True if cause else None  # trusted or unchecked data never lifts a hold by itself
    else:
        cause, want = None, action == "set"
    if want is None or want == held:
        state = "held" if held else "not held"
        return diagnosis(run, f"{run.tenant}/{run.surface} is {state}, as it should be")
    why = f"evaluation data untrusted ({cause})" if cause else f"{action} requested"
    return diagnosis(run, f"{run.tenant}/{run.surface} must be {'held' if want else 'released'}: {why}",
                     cause="hold_needed" if want else "release_needed", lever_args={"held": want, "reason": why})


def verify_hold(run: RunbookRun) -> CheckResult:
    """After the fix: the hold is in the state the diagnosis asked for."""
    diag = next((run.result(s.id) for s in run.spec.steps if s.role == "diagnose"), None)
    want = bool((diag.data.get("lever_args") or {}).get("held", True)) if isinstance(diag, CheckResult) else True
    current = hold_state(run)
    held = current.data.get("held")
    if held is None:
        return CheckResult("hold.verify", "fail", current.summary, current.data, None, _where(run))
    if bool(held) != want:
        return CheckResult("hold.verify", "fail", f"{_where(run)} is {'held' if held else 'not held'}, not "
                           f"{'held' if want else 'released'}", current.data, current.state, _where(run))
    return CheckResult("hold.verify", "ok", f"{_where(run)} is {'held' if held else 'not held'}: {current.summary}",
                       current.data, current.state, _where(run))


def verify_gate(run: RunbookRun) -> CheckResult:
    """The gate a scheduler asks before a publish answers as the hold says: exit 1 while held, 0 once released (2,
    cannot tell, counts as held). Read-only: it asks, it never publishes. With ``gate_command`` the deployment's own
    gate (its CronJob wrapper's check) is asked; else the same check as ``recsys-checks hold status``."""

    diag = next((run.result(s.id) for s in run.spec.steps if s.role == "diagnose"), None)
    want = bool((diag.data.get("lever_args") or {}).get("held", True)) if isinstance(diag, CheckResult) else True
    command = str(run.params.get("gate_command") or "").strip()
    if command:
        argv = command_argv(command, {"tenant": run.tenant, "surface": run.surface})
        result = run_command(argv, timeout=60, redact=run.redact)
        code, data = result.exit_code, {"argv": argv, "exit_code": result.exit_code, "output": result.output}
        asked = f"`{' '.join(argv)}`"
    else:
        state = hold_state(run)
        code = 2 if state.data.get("held") is None else 1 if state.data.get("held") else 0
        data, asked = {"exit_code": code, "hold": state.summary}, "the hold gate (`recsys-checks hold status`)"
    expected = 1 if want else 0
    meaning = {0: "go", 1: "held", 2: "cannot tell (a scheduler must treat it as held)"}.get(code, f"exit {code}")
    data["expected_exit_code"] = expected
    if code == 2 or code not in (0, 1):
        message = f"{asked} cannot tell whether {_where(run)} is held (exit {code}): a scheduler stops, but the hold's " \
                  "state is not verified"
        return CheckResult("hold.gate", "fail", message, data, None, _where(run), unread=message)
    if code != expected:
        return CheckResult("hold.gate", "fail", f"{asked} answers {meaning} (exit {code}) for {_where(run)}, not "
                           f"{'held' if want else 'go'}: a scheduler that asks it would "
                           f"{'still publish' if want else 'stay stopped'}", data, None, _where(run))
    return CheckResult("hold.gate", "ok", f"{asked} answers {meaning} (exit {code}) for {_where(run)}: a scheduler "
                       f"that asks it before each run {'publishes nothing' if want else 'publishes again'}; the "
                       "suite's pipelines check no hold themselves", data, None, _where(run))
