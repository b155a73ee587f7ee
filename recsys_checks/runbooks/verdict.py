"""The verdict rule: one function, :func:`decide`, turns the outcomes of a runbook's steps into its verdict.

A runbook is trusted only as far as it could see. The rule therefore looks at every step, not only at the
diagnosis, and it never lets "no known cause" stand for "healthy":

=====================================================  ==============================================================
what the steps show                                    verdict
=====================================================  ==============================================================
a step raised, or the diagnosis never ran              ``failed`` (the runbook itself could not run)
diagnosis names a cause, its lever was applied, every  ``mitigated``
verify step read its target and passed
... a verify step could not read its target            ``inconclusive`` (the fix may have worked; nobody saw it)
... a verify step failed or did not run                ``action-required`` (the fix did not verify)
diagnosis names a cause, dry run / no lever / failed   ``action-required`` (cause as diagnosed)
diagnosis names a cause with no lever, and a step      ``inconclusive``: the cause may be mis-named without what
could not read its target                              could not be read
no cause, a step could not read its target (or a       ``inconclusive``, naming what could not be read and why
check step did not run)
no cause, yet a check step found something wrong       ``action-required``, cause ``unexplained``, with the evidence
(``fail``)
no cause, every step read its target, none failed      ``healthy``
=====================================================  ==============================================================

A step *could not read its target* when its result carries ``unread`` (no URL, no key, unreachable, refused,
unreadable): see :attr:`recsys_checks.core.results.CheckResult.unread`. Info steps count for ``unread`` (a document the
runbook meant to read and could not) but not for ``unexplained`` (they describe, they do not judge). Verify steps
judge a fix: they run only once one was applied, and count only then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recsys_checks.core.results import ActionResult, CheckResult
from recsys_checks.runbooks.remedy import Remedy, StepResult

if TYPE_CHECKING:
    from recsys_checks.runbooks.spec import RunbookSpec

VERDICTS = ("healthy", "mitigated", "action-required", "inconclusive", "failed")
OK_VERDICTS = ("healthy", "mitigated")
UNEXPLAINED = "unexplained"
_DIAGNOSING_ROLES = ("check", "info")


@dataclass(frozen=True)
class Verdict:
    """The verdict of a run, with the cause it rests on, what could not be read and the evidence for ``unexplained``."""

    verdict: str
    next_action: str = ""
    cause: str | None = None
    unread: list[dict[str, str]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict in OK_VERDICTS

    def __iter__(self):  # (verdict, next_action), as a pair
        return iter((self.verdict, self.next_action))

    def __getitem__(self, index: int) -> str:
        return (self.verdict, self.next_action)[index]


def unread_of(step_id: str, result: Any) -> dict[str, str] | None:
    """``{"step", "what"}`` when the step's result says it could not read its target, else ``None``."""
    if isinstance(result, CheckResult) and result.unread:
        return {"step": step_id, "what": result.unread}
    if isinstance(result, ActionResult) and result.verification is not None and result.verification.unread:
        return {"step": step_id, "what": result.verification.unread}
    return None


def _unread_text(unread: list[dict[str, str]]) -> str:
    return "; ".join(f"{u['step']}: {u['what']}" for u in unread)


def decide(spec: RunbookSpec, results: dict[str, StepResult], error: dict[str, str] | None,
           names: dict[str, str] | None = None) -> Verdict:
    """The verdict of a run from its steps' results (see the module docstring for the whole table); ``names`` fills
    the ``{tenant}`` and ``{surface}`` of the commands it shows."""
    if error is not None:
        return Verdict("failed", f"step {error['step']} could not run: {error['error']}")
    diagnose = next(s for s in spec.steps if s.role == "diagnose")
    diagnosis = results.get(diagnose.id)
    if not isinstance(diagnosis, CheckResult):
        return Verdict("failed", f"the runbook stopped before its diagnosis ({diagnose.id})")
    # Verify steps judge a fix: they run only after one was applied (see RunbookRun.step), and count only then.
    reads = [s for s in spec.steps if s.role in _DIAGNOSING_ROLES]
    unread = [u for s in reads if (u := unread_of(s.id, results.get(s.id)))]
    not_run = [s.id for s in reads if s.role == "check" and s.id not in results]
    cause = diagnosis.data.get("cause") if diagnosis.data.get("problem") else None
    if cause is not None:
        return _with_cause(spec, results, diagnosis, cause, unread)
    if unread or not_run:
        parts = ([f"could not read: {_unread_text(unread)}"] if unread else []) + (
            [f"did not run: {', '.join(not_run)}"] if not_run else [])
        return Verdict("inconclusive", "nothing wrong was found, but not everything could be seen; "
                       + "; ".join(parts), None, unread)
    failing = [s for s in reads if s.role == "check" and _status(results.get(s.id)) == "fail"]
    if failing:
        evidence = [{"step": s.id, "summary": results[s.id].summary} for s in failing]  # type: ignore[union-attr]
        look = "; ".join(f"`{_filled(s.command, names or {})}`" for s in failing if s.command)
        return Verdict("action-required",
                       "no known cause explains what was found: " + "; ".join(
                           f"{e['step']}: {e['summary']}" for e in evidence)
                       + (f"; look further (read-only): {look}" if look else ""),
                       UNEXPLAINED, [], evidence)
    return Verdict("healthy")


def _filled(command: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        command = command.replace("{" + name + "}", value)
    return command


def _with_cause(spec: RunbookSpec, results: dict[str, StepResult], diagnosis: CheckResult, cause: str,
                unread: list[dict[str, str]]) -> Verdict:

    act = next((s for s in spec.steps if s.role == "act"), None)
    remedy = results.get(act.id) if act else None
    entries = diagnosis.data.get("detected") or [diagnosis.data]
    lever = any(e.get("lever") for e in entries if isinstance(e, dict))
    if not lever and unread:
        return Verdict("inconclusive", f"{diagnosis.summary}; but this may not be the whole story, because it "
                       f"could not read: {_unread_text(unread)}", cause, unread)
    if not isinstance(remedy, Remedy):
        return Verdict("action-required", diagnosis.data.get("next") or diagnosis.summary, cause, unread)
    if remedy.status == "planned":
        return Verdict("action-required", f"dry run: {remedy.summary}", cause, unread)
    if remedy.status in ("no-lever", "failed", "not-needed"):
        return Verdict("action-required", remedy.summary, cause, unread)
    if remedy.status == "moved":
        return _moved(spec, results, remedy, cause, unread)
    verify = [s for s in spec.steps if s.role == "verify"]
    verify_unread = [u for s in verify if (u := unread_of(s.id, results.get(s.id)))]
    if verify_unread:
        return Verdict("inconclusive", f"the fix was applied ({remedy.summary}) but its verification could not "
                       f"read: {_unread_text(verify_unread)}", cause, unread + verify_unread)
    unverified = [s.id for s in verify if not isinstance(results.get(s.id), CheckResult)
                  or _status(results.get(s.id)) == "fail"]
    if unverified:
        return Verdict("action-required", f"the fix was applied ({remedy.summary}) but verification failed at "
                       f"{', '.join(unverified)}", cause, unread)
    return Verdict("mitigated", _follow_ups(entries, [results.get(s.id) for s in verify]), cause, unread)


def _follow_ups(entries: list[Any], verified: list[Any]) -> str:
    """What remains to do once clients are served again: the causes found that no lever of the run fixes, and what
    the verify steps saw that does not hurt clients (the data's age after a rollback)."""
    left = [f"follow-up: {e.get('no_lever') or e.get('summary')}" for e in entries
            if isinstance(e, dict) and not e.get("lever") and (e.get("no_lever") or e.get("summary"))]
    left += [f"follow-up: {r.data['follow_up']}" for r in verified
             if isinstance(r, CheckResult) and r.data.get("follow_up")]
    return "; ".join(dict.fromkeys(left))


def _moved(spec: RunbookSpec, results: dict[str, StepResult], remedy: Any, cause: str,
           unread: list[dict[str, str]]) -> Verdict:
    """Another responder or a publish changed the state before this run acted: it changed nothing. Healthy when
    its verify steps see the surface fine now; else the conflict stands (``conflict`` next action, exit 3)."""
    verify = [s for s in spec.steps if s.role == "verify"]
    seen = [results.get(s.id) for s in verify]
    if verify and all(isinstance(r, CheckResult) and r.status != "fail" and not r.unread for r in seen):
        if unread:  # the verify steps look fine, but the diagnosis could not see everything
            return Verdict("inconclusive", f"{remedy.summary}; the verify steps pass, but the diagnosis could not "
                           f"read: {_unread_text(unread)}", cause, unread)
        return Verdict("healthy", f"{remedy.summary}; the surface is healthy now (diagnosed {cause})")
    return Verdict("action-required", f"conflict: {remedy.summary}; the surface is still not healthy: run the "
                   "runbook again to diagnose the state as it is now", cause, unread)


def _status(result: Any) -> str | None:
    return getattr(result, "status", None)
