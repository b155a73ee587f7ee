"""Diagnoses and the fix step: a diagnosis names a cause and the smallest lever that fixes it; ``apply_fix`` pulls it.

Levers (``data["lever"]`` of a diagnosis, with ``data["lever_args"]``):

- ``manifest-rollback``: repoint the manifest (``kind``, ``to`` or the previous valid version), then invalidate the
  service's popularity cache so that it serves what the manifest now names;
- ``doc-revert``: put the previous (or a given) config or rules version back, with ``If-Match``; the revert
  invalidates that cache itself. It needs the admin API only: without a registry, its audit record goes to
  ``RECSYS_AUDIT_DIR``, else to the run's folder (``<run folder>/audit/<tenant>/_tenant/``);
- ``cache-invalidate``: drop the service's caches (``targets``);
- ``command``: run the command the operator gave as a parameter (a scheduler's re-run of a day, a restart);
- ``hold``: set (or clear) the surface's hold marker, so that publishers stop (or resume) swapping its manifest.

A diagnosis with a problem and no lever says why in ``data["no_lever"]``. Every lever is a dry run unless the run
has ``execute``; every change is compare-and-swap and leaves an audit record (see the actions).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from typing import TYPE_CHECKING, Any

from recsys_checks.core.errors import BadInput, ChecksError, Conflict, UndeclaredCause
from recsys_checks.core.results import ActionResult, CheckResult
from recsys_checks.levers.audit import settle_manifest
from recsys_checks.levers.cache import apply_invalidate, plan_invalidate, settle_invalidations
from recsys_checks.levers.hold import apply_hold, plan_hold
from recsys_checks.levers.revert import apply_revert, plan_revert
from recsys_checks.levers.rollback import apply_rollback, describe_moves, plan_rollback
from recsys_checks.runbooks.decision import COMMAND_PARAMETERS, STEP_NOT_RUN, Cause
from recsys_checks.runbooks.remedy import CommandRun, Remedy

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

COMMAND_TIMEOUT = 600.0
_OUTPUT_LINES = 12


def diagnosis(run: RunbookRun, summary: str, *, cause: str | None = None, lever_args: dict[str, Any] | None = None,
              values: dict[str, Any] | None = None, evidence: list[dict[str, Any]] | None = None,
              lever_from: str | None = None) -> CheckResult:
    """The result of a diagnose step: ``ok`` when ``cause`` is None (nothing wrong), else ``fail`` with the row of
    the runbook's decision table that ``cause`` names.

    Everything about the remedy comes from that row: the lever's kind and fixed arguments, the arguments it takes
    from ``lever_args`` (what the run offers; the row says which it uses), the command of a ``command`` lever (the
    row's parameter; without it the row's follow-up stands instead), the hand-off and the follow-up, filled with
    ``values``. ``lever_from`` names another row whose lever acts (a version the operator asked for). A cause no row
    declares raises :class:`~recsys_checks.core.errors.UndeclaredCause`.
    """
    where = f"{run.tenant}/{run.surface}"
    if cause is None:
        return CheckResult(f"{run.spec.id}.diagnosis", "ok", summary,
                           {"problem": False, "cause": None, "lever": None, "lever_args": {}, "no_lever": None,
                            "runbook": None, "evidence": evidence or [], "commands": []}, None, where)
    row = _row(run, cause)
    acting = _row(run, lever_from) if lever_from else row
    filled = {"tenant": run.tenant, "surface": run.surface,
              **{k: v for k, v in (values or {}).items() if v not in (None, "")}}
    lever = acting.lever
    args: dict[str, Any] = {}
    commands: list[dict[str, str]] = []
    if lever is not None:
        args = lever.arguments(lever_args or {})
        command = None
        if lever.kind == "command":
            command = str(run.params.get(str(lever.param)) or "").strip()
            if command:
                args = {"command": command, "param": lever.param, "values": dict(values or {})}
            else:
                lever = None
        if lever is not None:
            commands = lever.commands(run.spec.id, run.tenant, run.surface, args, command)
    hand_off = row.hand_off
    no_lever = None if lever is not None else (row.follow_up_text(filled) or
                                               (f"follow the {hand_off.runbook} runbook: {hand_off.why}"
                                                if hand_off else None))
    data = {"problem": True, "cause": cause, "row": row.cause, "lever_from": acting.cause,
            "lever": lever.kind if lever is not None else None, "lever_args": args, "no_lever": no_lever,
            "runbook": hand_off.runbook if hand_off else None, "hand_off": hand_off.why if hand_off else None,
            "follow_up": row.follow_up_text(filled) if lever is not None else None,
            "evidence": evidence or [], "commands": commands}
    return CheckResult(f"{run.spec.id}.diagnosis", "fail", summary, data, None, where)


# The fields of a diagnosis that make one entry of ``detected`` (a cause found, with its remedy).
_ENTRY_FIELDS = ("cause", "row", "lever_from", "lever", "lever_args", "no_lever", "runbook", "hand_off", "follow_up",
                 "evidence", "commands")


def detected_of(diag: CheckResult) -> list[dict[str, Any]]:
    """Every cause a diagnosis found, in the order to fix them, each with its remedy (``[]`` when it found none)."""
    if not diag.data.get("problem"):
        return []
    listed = diag.data.get("detected")
    if isinstance(listed, list) and listed:
        return listed
    return [{"summary": diag.summary, **{k: diag.data.get(k) for k in _ENTRY_FIELDS}}]


def combine(run: RunbookRun, found: list[CheckResult | None], healthy: str) -> CheckResult:
    """One diagnosis from every cause whose evidence holds: ``found`` holds a diagnosis per evaluated row (``None``
    or ``ok`` where the evidence does not hold). The causes are kept once each, in the order of the decision table
    (the order to fix them); the first is the primary (its fields at the top, as a one-cause diagnosis has them),
    and ``data["detected"]`` lists them all. Healthy (``ok``, with ``healthy`` as its summary) when none holds."""
    problems: dict[str, CheckResult] = {}
    for diag in found:
        if diag is not None and diag.data.get("problem") and diag.data["cause"] not in problems:
            problems[diag.data["cause"]] = diag
    if not problems:
        return diagnosis(run, healthy)
    order = {row.cause: row.order for row in run.spec.decision.rows}
    ranked = sorted(problems.values(), key=lambda d: order.get(str(d.data.get("row")), len(order)))
    primary = ranked[0]
    entries = [entry for d in ranked for entry in detected_of(d)]
    primary.data["detected"] = entries
    if len(entries) > 1:
        primary.summary = f"{len(entries)} problems: " + "; ".join(
            f"({n}) {e['summary']}" for n, e in enumerate(entries, start=1))
    return primary


def _row(run: RunbookRun, cause: str) -> Cause:
    row = run.spec.cause(cause)
    if row is None:
        raise UndeclaredCause(f"runbook {run.spec.id} named the cause {cause!r}, which its decision table "
                              f"({run.spec.path.name}) does not declare; its causes are "
                              f"{', '.join(run.spec.decision.ids)}")
    return row


def step_not_run(run: RunbookRun, step: str) -> CheckResult:
    """The diagnosis when a step it reads has no result (the notebook's cells were run out of order)."""
    return diagnosis(run, f"the step {step} did not run, so there is nothing to diagnose from", cause=STEP_NOT_RUN)


def apply_fix(run: RunbookRun) -> Remedy:
    """Pull the lever of every cause the diagnosis found, in its order: each planned from its own row, and applied
    only when the run has ``execute``. Causes without a lever stay in the remedy's summary (what remains to do)."""
    diag = _diagnosis(run)
    if diag is None:
        return Remedy("failed", None, "no diagnosis to act on")
    if not diag.data.get("problem"):
        finished = _finish_interrupted(run) if run.execute else []
        more = f"; completed {len(finished)} audit record(s) a crash left behind" if finished else ""
        return Remedy("not-needed", None, f"nothing to fix: the diagnosis found no problem{more}")
    remedies: list[Remedy] = []
    pulled: set[tuple[str, str]] = set()
    without = []
    for entry in detected_of(diag):
        kind = entry.get("lever")
        if not kind:
            without.append(entry)
            continue
        args = dict(entry.get("lever_args") or {})
        key = (str(kind), str(args.get("kind") or args.get("targets") or args.get("kinds") or ""))
        if key in pulled:  # two causes, one change (the same document reverted once)
            continue
        pulled.add(key)
        remedies.append(_pull(run, entry, str(kind), args))
    if not remedies:
        return Remedy("no-lever", None, "; ".join(f"{e['summary']}; no lever within reach of this runbook: "
                                                  f"{e.get('no_lever')}" for e in without))
    return _together(remedies, without)


def _pull(run: RunbookRun, entry: dict[str, Any], kind: str, args: dict[str, Any]) -> Remedy:
    """Pull one cause's lever, as its row declares it."""
    row = _row(run, str(entry.get("lever_from") or entry["cause"]))
    if row.lever is None or row.lever.kind != kind:  # a diagnosis not made from this runbook's table
        return Remedy("failed", kind, f"the diagnosis asks for a {kind} lever, but the row {row.cause} of the "
                      "decision table has " + (f"a {row.lever.kind} lever" if row.lever else "none"))
    try:
        return LEVERS[kind](run, args)
    except Conflict as exc:  # changed between this run's plan and its apply: another responder got there first
        return Remedy("moved", kind, f"the state changed while this run acted, so nothing was changed by it: {exc}")
    except BadInput as exc:
        return Remedy("no-lever", kind, f"the {kind} lever cannot be planned: {exc}")
    except ChecksError as exc:
        return Remedy("failed", kind, f"the {kind} lever failed: {exc}")


# Which status a remedy of several levers takes: the first of these that any of them has.
_WORST_FIRST = ("failed", "no-lever", "planned")


def _together(remedies: list[Remedy], without: list[dict[str, Any]]) -> Remedy:
    """One remedy for the levers of several causes: every action and command, each lever's summary, and what the
    causes without a lever leave to do. Its status is the worst of theirs (``moved`` only when all moved)."""
    if len(remedies) == 1 and not without:
        return remedies[0]
    statuses = [r.status for r in remedies]
    status = next((s for s in _WORST_FIRST if s in statuses), "moved" if set(statuses) == {"moved"} else "applied")
    levers = ", ".join(dict.fromkeys(str(r.lever) for r in remedies))
    summary = "; ".join(r.summary for r in remedies)
    if without:
        summary += "; left to do (no lever in this runbook): " + "; ".join(
            str(e.get("no_lever") or e["summary"]) for e in without)
    return Remedy(status, levers, summary, [a for r in remedies for a in r.actions],  # type: ignore[arg-type]
                  [c for r in remedies for c in r.commands])


def _finish_interrupted(run: RunbookRun) -> list[str]:
    """With execute and nothing to fix, complete the records of a fix a crash interrupted on this surface (its
    change is judged by the manifest and the service's own audit log); a failure here changes no verdict."""

    done: list[str] = []
    try:
        if run.target.has_registry:
            done += settle_manifest(run.target, run.tenant, run.surface)
            if run.target.base_url and run.target.api_key:
                done += settle_invalidations(run.target, run.tenant, run.surface)
    except ChecksError:
        return done
    return done


def _diagnosis(run: RunbookRun) -> CheckResult | None:
    for s in run.spec.steps:
        if s.role == "diagnose":
            result = run.result(s.id)
            return result if isinstance(result, CheckResult) else None
    return None


def _actor_kwargs(run: RunbookRun, *, main: bool = False) -> dict[str, Any]:
    """What every apply gets from the run; the reviewed plan id binds only the lever's main action."""
    out: dict[str, Any] = {"runbook": run.spec.id, "confirm": run.confirm}
    if main:
        out["plan_id"] = run.plan_id
    return out


def _finish(run: RunbookRun, lever: str, actions: list[ActionResult], what: str) -> Remedy:
    if not run.execute:
        plan = actions[0].plan.plan_hash[:12] if actions else None
        return Remedy("planned", lever, f"would {what}; nothing was changed (plan {plan}: re-run with --execute, or "
                      "execute = True in the notebook, to apply it; add plan_id to apply only this plan)", actions)
    if all(a.status in ("applied", "noop") for a in actions):
        return Remedy("applied", lever, f"{what}: done", actions)
    return Remedy("failed", lever, f"{what}: not every action applied", actions)


def diagnosed_state(run: RunbookRun, lever: str, args: dict[str, Any]) -> list[str]:
    """The state tokens the diagnosis judged: the manifest's ETag as the manifest check read it, or the versions of
    the config or rules document the steps saw (the version the probe was served and the one the checks read;
    when they differ, the state moved while the runbook looked). Empty when no step of this run read it."""
    seen: list[str] = []
    if lever == "manifest-rollback":
        ms = run.result("manifest-status")
        if isinstance(ms, CheckResult) and ms.state:
            seen.append(ms.state)
    elif lever == "doc-revert":
        probe = run.result("probe")
        if isinstance(probe, CheckResult) and probe.data.get(f"{args.get('kind')}_version"):
            seen.append(str(probe.data[f"{args.get('kind')}_version"]))
        docs = run.result("config-rules")
        if isinstance(docs, CheckResult):
            row = next((r for r in docs.data.get("documents") or [] if r.get("kind") == args.get("kind")), None)
            if row and row.get("version"):
                seen.append(str(row["version"]))
    return seen


def moved_since(run: RunbookRun, lever: str, args: dict[str, Any], plan: Any) -> Remedy | None:
    """A ``moved`` remedy when the plan was made against another state than the one diagnosed (unless a version
    was named: then the operator's request, not the diagnosis, is what is acted on); else None."""
    if str(run.params.get("to_version") or "").strip() or plan.observed is None:
        return None
    for seen in diagnosed_state(run, lever, args):
        if _token(seen) != _token(plan.observed):
            return Remedy("moved", lever, f"the state the diagnosis saw ({_token(seen)[:12]}) is not the current "
                          f"one ({_token(plan.observed)[:12]}): another responder or a publish changed it since, so "
                          "this run changed nothing; the verify steps say whether the surface is fine now")
    return None


def _token(value: str) -> str:
    return str(value).strip().removeprefix("W/").strip('"')


def _manifest_rollback(run: RunbookRun, args: dict[str, Any]) -> Remedy:
    to = args.get("to") or None
    kinds = args.get("kinds") or None
    plan = plan_rollback(run.target, run.tenant, run.surface, to=to, previous=to is None, kind=args.get("kind"),
                         kinds=None if args.get("kind") else kinds, reason=run.reason)
    moved = moved_since(run, "manifest-rollback", args, plan)
    if moved is not None:
        return moved
    actions = [apply_rollback(run.target, plan, execute=run.execute, **_actor_kwargs(run, main=True))]
    if run.execute and actions[0].status == "noop":
        return Remedy("moved", "manifest-rollback", "the manifest is already in the state this run planned: another "
                      "responder made this change, so this run changed nothing")
    if run.target.base_url:
        # The service caches the manifest and blobs: without this it keeps serving the bad version for a TTL.
        cache_plan = plan_invalidate(run.target, run.tenant, ["popularity"], surface=run.surface, reason=run.reason)
        actions.append(apply_invalidate(run.target, cache_plan, execute=run.execute, **_actor_kwargs(run)))
    # Claim only what the actions hold: with no service URL there is no cache invalidation to report.
    what = describe_moves(run.tenant, run.surface, plan.changes)
    what += (" and invalidate the service's popularity cache" if len(actions) > 1 else
             "; the service's cache was not invalidated (no RECSYS_BASE_URL): it serves the old version until its "
             "TTL expires")
    return _finish(run, "manifest-rollback", actions, what)


def _doc_revert(run: RunbookRun, args: dict[str, Any]) -> Remedy:
    kind = args["kind"]
    to = args.get("to") or None
    plan = plan_revert(run.target, run.tenant, kind, to=to, previous=to is None, reason=run.reason,
                       surface=run.surface)
    moved = moved_since(run, "doc-revert", args, plan)
    if moved is not None:
        return moved
    # Without a registry to record in, our audit record stays with the run: in its folder, beside the run record.
    action = apply_revert(run.target, plan, execute=run.execute, audit_dir=run.out_dir,
                          **_actor_kwargs(run, main=True))
    if run.execute and action.status == "noop":
        return Remedy("moved", "doc-revert", f"the {kind} of {run.tenant} is already the version this run planned: "
                      "another responder made this change, so this run changed nothing")
    change = plan.changes[0]
    return _finish(run, "doc-revert", [action], f"revert the {kind} of {run.tenant} from "
                   f"{str(change['before'])[:12]} to {str(change['after'])[:12]}")


def _cache_invalidate(run: RunbookRun, args: dict[str, Any]) -> Remedy:
    targets = args.get("targets") or ["popularity"]
    plan = plan_invalidate(run.target, run.tenant, targets, surface=run.surface, reason=run.reason)
    action = apply_invalidate(run.target, plan, execute=run.execute, **_actor_kwargs(run, main=True))
    return _finish(run, "cache-invalidate", [action],
                   f"invalidate the {', '.join(targets)} cache(s) of {run.tenant}/{run.surface}")


def _command(run: RunbookRun, args: dict[str, Any]) -> Remedy:
    template = str(args["command"])
    what = COMMAND_PARAMETERS.get(str(args.get("param")), "run the given command")
    argv = command_argv(template, {"tenant": run.tenant, "surface": run.surface, **(args.get("values") or {})})
    shown = " ".join(shlex.quote(a) for a in argv)
    if not run.execute:
        return Remedy("planned", "command", f"would {what}: `{shown}`; nothing was run (re-run with --execute, or "
                      "execute = True in the notebook, to run it)")
    command = run_command(argv, timeout=float(args.get("timeout") or COMMAND_TIMEOUT), redact=run.redact)
    if command.exit_code == 0:
        return Remedy("applied", "command", f"{what}: `{shown}` exited 0", commands=[command])
    why = "timed out" if command.exit_code is None else f"exited {command.exit_code}"
    return Remedy("failed", "command", f"{what}: `{shown}` {why}; see its output", commands=[command])


def _hold(run: RunbookRun, args: dict[str, Any]) -> Remedy:

    held = bool(args.get("held", True))
    reason = run.params.get("reason") or args.get("reason") or run.reason
    plan = plan_hold(run.target, run.tenant, run.surface, held=held, reason=str(reason))
    action = apply_hold(run.target, plan, execute=run.execute, runbook=run.spec.id, plan_id=run.plan_id,
                        confirm=run.confirm)
    what = f"{'hold' if held else 'release'} publishing of {run.tenant}/{run.surface}"
    return _finish(run, "hold", [action], what)


def command_argv(template: str, values: dict[str, Any]) -> list[str]:
    """Split a command template like a shell would (no shell runs it) and fill ``{tenant}``, ``{surface}``, ``{day}``."""
    try:
        parts = shlex.split(template)
    except ValueError as exc:
        raise BadInput(f"command {template!r} cannot be split into arguments: {exc}") from None
    if not parts:
        raise BadInput("the command is empty")
    out = []
    for part in parts:
        try:
            out.append(part.format_map(values))
        except (KeyError, IndexError, ValueError) as exc:
            raise BadInput(f"command {template!r}: unknown placeholder {exc}; use {{tenant}}, {{surface}}, "
                           "{day}") from None
    return out


def run_command(argv: list[str], *, timeout: float, redact: Any = None) -> CommandRun:
    """Run ``argv`` (no shell) with a timeout; the last lines of its output are kept, secrets redacted."""
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
                              stdin=subprocess.DEVNULL, errors="replace")
        code: int | None = proc.returncode
        output = (proc.stdout or "") + (proc.stderr or "")
    except subprocess.TimeoutExpired as exc:
        code = None
        output = _text(exc.stdout) + _text(exc.stderr) + f"\n(timed out after {timeout:.0f} s)"
    except OSError as exc:
        code, output = 127, f"cannot run {argv[0]!r}: {exc.strerror or exc}"
    tail = "\n".join(output.strip().splitlines()[-_OUTPUT_LINES:])
    if redact is not None:
        tail = redact(tail)
    return CommandRun(argv=list(argv), exit_code=code, seconds=round(time.monotonic() - started, 3), output=tail)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# The function that pulls each kind of lever a decision table may name (decision.LEVER_KINDS; a test keeps both equal).
LEVERS = {
    "manifest-rollback": _manifest_rollback,
    "doc-revert": _doc_revert,
    "cache-invalidate": _cache_invalidate,
    "command": _command,
    "hold": _hold,
}
