"""One run of a runbook inside its notebook: the step results it collects, its verdict and its run record.

A notebook makes one :class:`RunbookRun` from its parameters, calls ``run.step(step_id, function)`` once per step
(the function does the work and returns a result; the run keeps it and shows it as a table), and ends with
``run.finish()``, which decides the verdict and writes the run record ``<out>/<id>.result.json``:

- ``healthy``: every check and verify step ran, read its target and found nothing wrong;
- ``mitigated``: it found a problem, the fix was applied and every verification step passed;
- ``action-required``: it found a problem that is not fixed: a dry run, no lever within reach, or a fix that did
  not verify (``next_action`` says which); cause ``unexplained`` when a check failed and no known cause explains it;
- ``inconclusive``: a step could not read what it checks (``unread`` names what and why);
- ``failed``: the runbook itself could not run (a step raised, or the diagnosis was never reached).

The rule itself is :func:`recsys_checks.verdict.decide`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import credentials
from .config import Target
from .errors import BadInput, ChecksError
from .results import ActionResult, CheckResult
from .runbook import RunbookSpec, load_spec
from .timefmt import format_z
from .verdict import Verdict, decide

RECORD_ENV = "RECSYS_RUNBOOK_RECORD"  # set by `recsys-checks runbook run`: where the kernel writes the run record
# Set by `recsys-checks runbook run`: the run's output folder (--out), where the run record ends up. The kernel writes
# the record in a temporary folder first, so what must outlive the run (a local audit record) goes here instead.
OUT_ENV = "RECSYS_RUNBOOK_OUT"
RECORD_FORMAT = 1

# ``moved``: the state the diagnosis saw changed before this run could act (another responder, a publish); this
# run changed nothing, and its verify steps tell whether the surface is fine now.
# How long the verify steps of a run whose state moved (another responder) wait for that fix to land.
MOVED_SETTLE_SECONDS = 10.0
RemedyStatus = Literal["not-needed", "no-lever", "planned", "applied", "failed", "moved"]


@dataclass
class CommandRun:
    """A command a runbook ran for its fix (a scheduler's re-run of a publish, a restart), as given to it."""

    argv: list[str]
    exit_code: int | None
    seconds: float
    output: str  # the last lines of stdout and stderr, secrets redacted


@dataclass
class Remedy:
    """What the act step did: the lever pulled (or why none), and every action and command it involved."""

    status: RemedyStatus
    lever: str | None
    summary: str
    actions: list[ActionResult] = field(default_factory=list)
    commands: list[CommandRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "lever": self.lever, "summary": self.summary,
            "actions": [a.to_dict() for a in self.actions], "commands": [asdict(c) for c in self.commands],
        }


StepResult = CheckResult | ActionResult | Remedy


@dataclass
class StepOutcome:
    step: str
    role: str
    status: str
    summary: str
    seconds: float
    result: dict[str, Any]


def status_of(result: StepResult) -> str:
    if isinstance(result, CheckResult):
        return result.status
    return result.status


class RunbookRun:
    """The state of one runbook run in its notebook (see the module docstring)."""

    def __init__(self, runbook_id: str, *, execute: bool = False, reason: str = "", spec: RunbookSpec | None = None,
                 target: Target | None = None, record_path: str | Path | None = None, **params: Any) -> None:
        self.spec = spec or load_spec(runbook_id)
        given = {**params, "execute": execute, "reason": reason}
        self.params = self.spec.parse_parameters(given)
        self.tenant: str = self.params["tenant"]
        self.surface: str = self.params["surface"]
        self.execute: bool = self.params["execute"]
        self.reason: str = self.params["reason"] or f"runbook {self.spec.id}"
        self.target = target or Target.from_env()
        self.confirm: str | None = self.params.get("confirm") or None
        self.plan_id: str | None = self.params.get("plan_id") or None
        if self.execute:
            check_deployment(self.target, self.confirm)
        self.started_at = datetime.now(UTC)
        self._clock = time.monotonic()
        self.results: dict[str, StepResult] = {}
        self.outcomes: list[StepOutcome] = []
        self.error: dict[str, str] | None = None
        # What several steps read once per run (the published popularity state): see steps.serving.published.
        self.memo: dict[str, Any] = {}
        self.record_path = Path(record_path or os.environ.get(RECORD_ENV) or self._default_path())
        # The run's folder: where a lever that has no registry to record in keeps its audit record.
        out = os.environ.get(OUT_ENV)
        self.out_dir = Path(out) if out and not record_path else self.record_path.parent

    def _default_path(self) -> Path:
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        return Path("incidents") / f"{stamp}-{self.spec.id}" / f"{self.spec.id}.result.json"

    def param(self, name: str) -> Any:
        return self.params[name]

    def result(self, step_id: str) -> StepResult | None:
        return self.results.get(step_id)

    # ----------------------------------------------------------------------------------------------- steps

    def step(self, step_id: str, function: Any, *, show: bool = True) -> None:
        """Run one step's function with this run, keep its result and print it as a table (see :meth:`result`)."""
        spec_step = self.spec.step(step_id)
        started = time.monotonic()
        if spec_step.role == "verify" and not self._fix_applied():
            self._not_run(spec_step.id, show)
            return
        try:
            result = function(self)
            if spec_step.role == "verify" and self._moved():
                # Another responder is acting on the same incident: give its fix (a rollback, then its cache
                # invalidation) a moment to land before judging the surface, within a bound.
                deadline = time.monotonic() + MOVED_SETTLE_SECONDS
                while getattr(result, "status", None) == "fail" and time.monotonic() < deadline:
                    time.sleep(1.0)
                    result = function(self)
        except ChecksError as exc:
            self.error = {"step": step_id, "error": self.redact(str(exc))}
            self._save()
            raise
        self.results[step_id] = result
        self.outcomes.append(StepOutcome(
            step=step_id, role=spec_step.role, status=status_of(result), summary=self.redact(result.summary),
            seconds=round(time.monotonic() - started, 3), result=result.to_dict(),
        ))
        self._save()
        if show:
            print(render(result))

    def _moved(self) -> bool:
        remedy = self._by_role("act")
        return isinstance(remedy, Remedy) and remedy.status == "moved"

    def _fix_applied(self) -> bool:
        remedy = self._by_role("act")
        return isinstance(remedy, Remedy) and remedy.status in ("applied", "moved")

    def _not_run(self, step_id: str, show: bool) -> None:
        """A verify step when no fix was applied: there is nothing to verify, and it is shown as not run."""
        remedy = self._by_role("act")
        why = ("dry run: nothing was changed, so there is nothing to verify"
               if isinstance(remedy, Remedy) and remedy.status == "planned"
               else "no fix was applied, so there is nothing to verify")
        self.outcomes.append(StepOutcome(step=step_id, role="verify", status="not-run", summary=f"not run ({why})",
                                         seconds=0.0, result={}))
        self._save()
        if show:
            print(f"[NOT RUN] {why}")

    # ----------------------------------------------------------------------------------------------- verdict

    def verdict(self) -> Verdict:
        """The verdict from the recorded steps (see :func:`recsys_checks.verdict.decide`)."""
        return decide(self.spec, self.results, self.error)

    def run_record(self) -> dict[str, Any]:
        """The run record as a dict (secret-free)."""
        decided = self.verdict()
        diagnosis = self._by_role("diagnose")
        remedy = self._by_role("act")
        detected = []
        if isinstance(diagnosis, CheckResult) and diagnosis.data.get("problem"):
            detected.append({"cause": diagnosis.data.get("cause"), "summary": diagnosis.summary})
        elif decided.evidence:
            detected.append({"cause": decided.cause, "summary": decided.next_action, "evidence": decided.evidence})
        changed = changes_of(remedy) if isinstance(remedy, Remedy) else []
        doc = {
            "format": RECORD_FORMAT,
            "runbook": self.spec.id,
            "title": self.spec.title,
            "started_at": format_z(self.started_at),
            "ended_at": format_z(datetime.now(UTC)),
            "seconds": round(time.monotonic() - self._clock, 3),
            "deployment": os.environ.get("RECSYS_DEPLOYMENT") or None,
            "target": self.target.to_public_dict(),
            "parameters": self.params,
            "execute": self.execute,
            "verdict": decided.verdict,
            "next_action": decided.next_action,
            "cause": decided.cause,
            "unread": decided.unread,
            "detected": detected,
            "changed": changed,
            "steps": [asdict(o) for o in self.outcomes],
            "error": self.error,
        }
        return json.loads(self.redact(json.dumps(doc, default=str)))

    def finish(self) -> dict[str, Any]:
        """Decide the verdict, write the run record and print the verdict line; returns the record."""
        doc = self._save()
        print(f"verdict: {doc['verdict'].upper()}" + (f" — {doc['next_action']}" if doc["next_action"] else ""))
        print(f"run record: {self.record_path}")
        return doc

    def _save(self) -> dict[str, Any]:
        doc = self.run_record()
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=2) + "\n"
        leaked = find_secrets(text)
        if leaked:
            raise BadInput(f"refusing to write the run record: it would contain the value of {', '.join(leaked)}")
        tmp = self.record_path.with_name(f".{self.record_path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.record_path)
        return doc

    def _by_role(self, role: str) -> StepResult | None:
        for s in self.spec.steps:
            if s.role == role and s.id in self.results:
                return self.results[s.id]
        return None

    def redact(self, text: str) -> str:
        """``text`` with every credential of the environment masked, in every encoding (recsys_checks.credentials)."""
        return credentials.mask(text)


def check_deployment(target: Target, confirm: str | None) -> None:
    """On a protected deployment, execute needs its name confirmed (BadInput before anything runs)."""
    if target.protected and confirm != target.deployment:
        raise BadInput(f"deployment {target.deployment!r} is protected: pass confirm={target.deployment} (--confirm "
                       f"{target.deployment}) to let execute change it; nothing was run"
                       + (f" (got {confirm!r})" if confirm else ""))


def find_secrets(text: str, env: dict[str, str] | None = None) -> list[str]:
    """Names of the secret variables whose values (in any encoding we know) appear in ``text``."""
    return credentials.find(text, env)


def changes_of(remedy: Remedy) -> list[dict[str, Any]]:
    """Before → after of every change a remedy applied, with the audit record's location."""
    out: list[dict[str, Any]] = []
    for action in remedy.actions:
        if action.status != "applied":
            continue
        for change in action.plan.changes:
            out.append({"action": action.plan.action, "what": change.get("what") or change.get("kind"),
                        "before": change.get("before"), "after": change.get("after"), "audit": action.audit})
    for command in remedy.commands:
        out.append({"action": "command", "what": " ".join(command.argv), "exit_code": command.exit_code})
    return out


def render(result: StepResult) -> str:
    """A result as the CLI would print it (plain text, no colour)."""
    from .output import render_action, render_check

    if isinstance(result, CheckResult):
        return render_check(result)
    if isinstance(result, ActionResult):
        return render_action(result)
    lines = [f"[{result.status.upper()}] {result.summary}"]
    for action in result.actions:
        lines.append(render_action(action))
    for command in result.commands:
        lines.append(f"$ {' '.join(command.argv)}  (exit {command.exit_code}, {command.seconds:.1f} s)")
        if command.output:
            lines.extend("    " + line for line in command.output.splitlines())
    return "\n".join(lines)
