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

The rule itself is :func:`recsys_checks.runbooks.verdict.decide`.

The record is rewritten after every step, each time whole or not at all (:func:`write_atomic`: a temporary file in
the same folder, fsynced, renamed over the record), so a crash or a full disk leaves the previous complete record,
never a cut one. A write that fails raises :class:`RecordNotWritten`, whose message lists every change the run has
applied and where its audit record is. A step's result is recorded once, with each list of its data cut to
:data:`RECORD_MAX_ROWS` rows (the steps themselves judge the whole list), so a step's save costs the size of the
record, not of the history it read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys_checks.core import credentials
from recsys_checks.core.errors import BadInput, ChecksError, RecordNotWritten
from recsys_checks.core.files import write_atomic
from recsys_checks.core.render import render_action, render_check
from recsys_checks.core.results import ActionResult, CheckResult
from recsys_checks.core.timefmt import format_z
from recsys_checks.levers import guard
from recsys_checks.reach.localfiles import check_log_source
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.remedy import MOVED_SETTLE_SECONDS, Remedy, StepResult
from recsys_checks.runbooks.spec import RunbookSpec, load_spec
from recsys_checks.runbooks.verdict import Verdict, decide

RECORD_ENV = "RECSYS_RUNBOOK_RECORD"  # set by `recsys-checks runbook run`: where the kernel writes the run record
# Set by `recsys-checks runbook run`: the run's output folder (--out), where the run record ends up. The kernel writes
# the record in a temporary folder first, so what must outlive the run (a local audit record) goes here instead.
OUT_ENV = "RECSYS_RUNBOOK_OUT"
RECORD_FORMAT = 1
# The most rows of one list in a step's data that the run record keeps and the notebook shows (the first ones, in the
# step's own order: newest first for a history); ``<list>_not_recorded`` says how many were left out. The step and
# the ones after it judge the whole list: only the record's copy is cut.
RECORD_MAX_ROWS = 100


@dataclass
class StepOutcome:
    step: str
    role: str
    status: str
    summary: str
    seconds: float
    result: dict[str, Any]


def fix_of(diagnosis: Any, remedy: Any) -> dict[str, Any] | None:
    """What the decision table's row of the diagnosed cause says to do, as this run filled it: the lever and the
    commands that do it by hand (dry run, then the apply of the plan it prints), the plan this run made, the
    runbook to hand off to and what remains to do. ``None`` when nothing was diagnosed."""
    if not isinstance(diagnosis, CheckResult) or not diagnosis.data.get("problem"):
        return None
    data = diagnosis.data
    plan = None
    if isinstance(remedy, Remedy) and remedy.actions and remedy.actions[0].plan is not None:
        plan = remedy.actions[0].plan.plan_hash[:12]
    commands = [dict(c) for c in data.get("commands") or []]
    if plan and len(commands) == 1:
        commands[0]["apply"] = commands[0]["apply"].replace("{plan}", plan)
    return {"row": data.get("row"), "lever": data.get("lever"), "lever_args": data.get("lever_args") or {},
            "commands": commands, "plan_id": plan, "no_lever": data.get("no_lever"),
            "hand_off": ({"runbook": data["runbook"], "why": data.get("hand_off")} if data.get("runbook") else None),
            "follow_up": data.get("follow_up")}


def _detected_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One cause of the run record's ``detected``: what was found and what its row says to do."""
    return {"cause": entry.get("cause"), "summary": entry.get("summary"), "lever": entry.get("lever"),
            "lever_args": entry.get("lever_args") or {}, "commands": entry.get("commands") or [],
            "no_lever": entry.get("no_lever"), "follow_up": entry.get("follow_up"),
            "hand_off": ({"runbook": entry["runbook"], "why": entry.get("hand_off")} if entry.get("runbook")
                         else None)}


def describe_changes(changed: list[dict[str, Any]]) -> str:
    """The changes of a run record's ``changed`` list as lines for a person: what moved and where its audit is."""
    if not changed:
        return "this run changed nothing"
    lines = [f"this run applied {len(changed)} change(s):"]
    for c in changed:
        if c.get("action") == "command":
            lines.append(f"  - ran `{c.get('what')}` (exit {c.get('exit_code')})")
            continue
        audit = (f"audit record {c['audit']}" if c.get("audit")
                 else "its audit record was not written: its intent stands and the next run completes it")
        lines.append(f"  - {c.get('action')} {c.get('what')}: {c.get('before')} -> {c.get('after')} ({audit})")
    return "\n".join(lines)


def _bounded(result: StepResult) -> StepResult:
    """``result`` as the run record keeps it: a check's data with each list cut to :data:`RECORD_MAX_ROWS`."""
    if not isinstance(result, CheckResult):
        return result
    cut = {k: v for k, v in result.data.items() if isinstance(v, list) and len(v) > RECORD_MAX_ROWS}
    if not cut:
        return result
    data = dict(result.data)
    for key, rows in cut.items():
        data[key] = rows[:RECORD_MAX_ROWS]
        data[f"{key}_not_recorded"] = len(rows) - RECORD_MAX_ROWS
    return replace(result, data=data)




class RunbookRun:
    """The state of one runbook run in its notebook (see the module docstring)."""

    def __init__(self, runbook_id: str, *, spec: RunbookSpec | None = None, target: Target | None = None,
                 record_path: str | Path | None = None, **params: Any) -> None:
        self.spec = spec or load_spec(runbook_id)
        self.target = target or Target.from_env()
        # The same checks as `recsys-checks runbook run`, so a notebook run from Jupyter is refused the same way.
        self.params = run_parameters(self.spec, params, self.target)
        self.tenant: str = self.params["tenant"]
        self.surface: str = self.params["surface"]
        self.execute: bool = self.params["execute"]
        self.reason: str = self.params["reason"] or f"runbook {self.spec.id}"
        self.confirm: str | None = self.params.get("confirm") or None
        self.plan_id: str | None = self.params.get("plan_id") or None
        self.started_at = datetime.now(UTC)
        self._clock = time.monotonic()
        self.results: dict[str, StepResult] = {}
        self.outcomes: list[StepOutcome] = []
        self._recorded: list[dict[str, Any]] = []  # each outcome as the record keeps it, redacted once
        self.error: dict[str, str] | None = None
        # What several steps read once per run (the published popularity state): see steps.serving.published.
        self.memo: dict[str, Any] = {}
        self.record_path = Path(record_path or os.environ.get(RECORD_ENV)
                                or default_out_dir(self.spec.id, self.started_at) / f"{self.spec.id}.result.json")
        # The run's folder: where a lever that has no registry to record in keeps its audit record.
        out = os.environ.get(OUT_ENV)
        self.out_dir = Path(out) if out and not record_path else self.record_path.parent

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
        recorded = _bounded(result)
        self.outcomes.append(StepOutcome(
            step=step_id, role=spec_step.role, status=result.status, summary=self.redact(result.summary),
            seconds=round(time.monotonic() - started, 3), result=recorded.to_dict(),
        ))
        self._save()
        if show:
            print(render(recorded))
            if recorded is not result:
                left = ", ".join(f"{v} more {k[: -len('_not_recorded')]}" for k, v in recorded.data.items()
                                 if k.endswith("_not_recorded"))
                print(f"  ({left} not shown or recorded: the first {RECORD_MAX_ROWS} of each list are; "
                      "the step judged them all)")
        for figure in pictures.pending(self):  # what the step drew, under its table (never in the record)
            if show:
                pictures.show(figure)

    def _moved(self) -> bool:
        remedy = self._by_role("act")
        return isinstance(remedy, Remedy) and remedy.status == "moved"

    def _fix_applied(self) -> bool:
        remedy = self._by_role("act")
        return isinstance(remedy, Remedy) and remedy.status in ("applied", "moved")

    def _not_run(self, step_id: str, show: bool) -> None:
        """A verify step when no fix was applied: there is nothing to verify, and it is shown as not run."""
        remedy = self._by_role("act")
        dry = isinstance(remedy, Remedy) and remedy.status == "planned"
        why = ("dry run: nothing was changed, so there is nothing to verify" if dry
               else "no fix was applied, so there is nothing to verify")
        # ``not_run`` says why for a program: ``dry-run`` (the fix was only planned) or ``no-fix`` (none was applied);
        # either way the step judged nothing, which is not a failed verification.
        self.outcomes.append(StepOutcome(step=step_id, role="verify", status="not-run", summary=f"not run ({why})",
                                         seconds=0.0, result={"not_run": "dry-run" if dry else "no-fix"}))
        self._save()
        if show:
            print(f"[NOT RUN] {why}")

    # ----------------------------------------------------------------------------------------------- verdict

    def verdict(self) -> Verdict:
        """The verdict from the recorded steps (see :func:`recsys_checks.runbooks.verdict.decide`)."""
        return decide(self.spec, self.results, self.error, {"tenant": self.tenant, "surface": self.surface})

    def run_record(self) -> dict[str, Any]:
        """The run record as a dict (secret-free)."""
        decided = self.verdict()
        diagnosis = self._by_role("diagnose")
        remedy = self._by_role("act")
        detected = []
        if isinstance(diagnosis, CheckResult) and diagnosis.data.get("problem"):
            detected = [_detected_entry(e) for e in diagnosis.data.get("detected") or
                        [{**diagnosis.data, "summary": diagnosis.summary}]]
        elif decided.evidence:
            detected.append({"cause": decided.cause, "summary": decided.next_action, "evidence": decided.evidence})
        changed = changes_of(remedy) if isinstance(remedy, Remedy) else []
        requested = requested_of(diagnosis, remedy)
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
            "requested": requested,
            "unread": decided.unread,
            "detected": detected,
            "fix": fix_of(diagnosis, remedy),
            "changed": changed,
            "steps": None,
            "error": self.error,
        }
        out = json.loads(self.redact(json.dumps(doc, default=str)))
        for outcome in self.outcomes[len(self._recorded):]:  # a step's outcome never changes once recorded
            self._recorded.append(json.loads(self.redact(json.dumps(asdict(outcome), default=str))))
        out["steps"] = list(self._recorded)
        return out

    def finish(self) -> dict[str, Any]:
        """Decide the verdict, write the run record and print the verdict line; returns the record."""
        doc = self._save()
        print(f"verdict: {doc['verdict'].upper()}" + (f" — {doc['next_action']}" if doc["next_action"] else ""))
        print(f"run record: {self.kept_record_path}")
        return doc

    @property
    def kept_record_path(self) -> Path:
        """Where the run record is kept once the run ends: ``<out>/ID.result.json`` under ``recsys-checks runbook
        run`` (the kernel writes it in a temporary folder, which the runner removes after moving the record into
        ``--out``), else :attr:`record_path` itself."""
        if os.environ.get(OUT_ENV) and os.environ.get(RECORD_ENV) and self.record_path == Path(os.environ[RECORD_ENV]):
            return self.out_dir / self.record_path.name
        return self.record_path

    def _save(self) -> dict[str, Any]:
        """Write the run record whole (see :func:`write_atomic`); RecordNotWritten, listing every change this run
        applied, when it cannot be written."""
        doc = self.run_record()
        text = json.dumps(doc, indent=2) + "\n"
        leaked = credentials.find(text)
        if leaked:
            raise BadInput(f"refusing to write the run record: it would contain the value of {', '.join(leaked)}")
        try:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.record_path, text.encode("utf-8"))
        except OSError as exc:
            kept = ("the record of the steps before is left whole there" if self.record_path.exists()
                    else "no record was left")
            raise RecordNotWritten(
                f"the run record could not be written to {self.record_path} ({exc.strerror or exc}); {kept}; "
                f"the runbook stopped here. {describe_changes(doc['changed'])}") from None
        return doc

    def _by_role(self, role: str) -> StepResult | None:
        for s in self.spec.steps:
            if s.role == role and s.id in self.results:
                return self.results[s.id]
        return None

    def redact(self, text: str) -> str:
        """``text`` with every credential of the environment masked, in every encoding (recsys_checks.core.credentials)."""
        return credentials.mask(text)



def default_out_dir(runbook_id: str, now: datetime | None = None) -> Path:
    """Where a run keeps its notebook and record when no folder is given: ``incidents/<UTC stamp>-<id>/``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path("incidents") / f"{stamp}-{runbook_id}"


def run_parameters(spec: RunbookSpec, given: Mapping[str, Any], target: Target) -> dict[str, Any]:
    """A run's parameters, as the runner and the notebook both take them: the spec's defaults overlaid with
    ``given``, each type-checked; BadInput for an unknown or secret-named one, for a value that carries a credential
    of the environment, and for an execute run on a protected deployment whose name was not confirmed."""
    params = spec.parse_parameters(dict(given))
    for name, value in params.items():
        leaked = credentials.find(value) if isinstance(value, str) else []
        if leaked:
            raise BadInput(f"parameter {name} contains the value of {leaked[0]}: credentials come from the "
                           "environment only, never from a parameter (a notebook keeps its parameters)")
    if params.get("job_log"):  # a path that is no readable log is refused before any step runs
        check_log_source(str(params["job_log"]).replace("{tenant}", str(params.get("tenant", "")))
                      .replace("{surface}", str(params.get("surface", ""))))
    if params["execute"]:
        guard.require_confirmed(target, params.get("confirm") or None, nothing="nothing was run")
    return params




def requested_of(diagnosis: StepResult | None, remedy: StepResult | None) -> dict[str, Any] | None:
    """The version the operator named (``to_version``), beside the cause the checks found: ``{"to_version",
    "direction"}``, where direction is ``back``, ``forward`` or ``mixed`` once a manifest plan was made (else
    None). None when nothing was named."""
    if not isinstance(diagnosis, CheckResult) or not diagnosis.data.get("requested"):
        return None
    direction = None
    if isinstance(remedy, Remedy):
        direction = next((a.plan.details.get("direction") for a in remedy.actions
                          if a.plan is not None and a.plan.details.get("direction")), None)
    return {"to_version": diagnosis.data["requested"], "direction": direction}


def changes_of(remedy: Remedy) -> list[dict[str, Any]]:
    """Before → after of every change a remedy applied, with the audit record's location."""
    out: list[dict[str, Any]] = []
    for action in remedy.actions:
        if action.status != "applied":
            continue
        for change in action.plan.changes:
            out.append({"action": action.plan.action, "what": change.get("what") or change.get("kind"),
                        "before": change.get("before"), "after": change.get("after"), "audit": action.audit,
                        **({"direction": change["direction"]} if change.get("direction") else {})})
        for rewrite in action.plan.details.get("rewrites") or []:  # what a repoint changes besides the pointers
            out.append({"action": action.plan.action, "what": rewrite["what"], "before": rewrite["before"],
                        "after": rewrite["after"], "why": rewrite["why"], "audit": action.audit})
    for command in remedy.commands:
        out.append({"action": "command", "what": " ".join(command.argv), "exit_code": command.exit_code})
    return out


def render(result: StepResult) -> str:
    """A result as the CLI would print it (plain text, no colour)."""

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
