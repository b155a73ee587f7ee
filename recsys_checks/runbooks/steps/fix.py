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

from recsys_checks.core.errors import BadInput, ChecksError, Conflict
from recsys_checks.core.results import ActionResult, CheckResult
from recsys_checks.levers.audit import settle_manifest
from recsys_checks.levers.cache import apply_invalidate, plan_invalidate, settle_invalidations
from recsys_checks.levers.hold import apply_hold, plan_hold
from recsys_checks.levers.revert import apply_revert, plan_revert
from recsys_checks.levers.rollback import apply_rollback, describe_moves, plan_rollback
from recsys_checks.runbooks.remedy import CommandRun, Remedy

if TYPE_CHECKING:
    from recsys_checks.runbooks.run import RunbookRun

COMMAND_TIMEOUT = 600.0
_OUTPUT_LINES = 12


def diagnosis(run: RunbookRun, summary: str, *, cause: str | None = None, lever: str | None = None,
              lever_args: dict[str, Any] | None = None, no_lever: str | None = None, runbook: str | None = None,
              evidence: list[dict[str, Any]] | None = None) -> CheckResult:
    """The result of a diagnose step: ``ok`` when ``cause`` is None (nothing wrong), else ``fail``."""
    problem = cause is not None
    data = {"problem": problem, "cause": cause, "lever": lever if problem else None,
            "lever_args": lever_args or {}, "no_lever": no_lever if problem and not lever else None,
            "runbook": runbook, "evidence": evidence or []}
    return CheckResult(f"{run.spec.id}.diagnosis", "fail" if problem else "ok", summary, data, None,
                       f"{run.tenant}/{run.surface}")


def rerun_lever(run: RunbookRun, summary: str, *, cause: str, runbook: str | None = None,
                   values: dict[str, Any] | None = None) -> CheckResult:
    """A diagnosis whose fix is re-running a publish: the operator's command when given, else no lever."""
    command = str(run.params.get("rerun_command") or "").strip()
    if command:
        return diagnosis(run, summary, cause=cause, lever="command", runbook=runbook,
                         lever_args={"command": command, "what": "re-run the publish", "values": values or {}})
    return diagnosis(run, summary, cause=cause, runbook=runbook,
                     no_lever="re-run the publish with your scheduler (pass its command as the rerun_command "
                              "parameter to let this runbook run it)")


def apply_fix(run: RunbookRun) -> Remedy:
    """Pull the lever the diagnosis chose: plan it, and apply it only when the run has ``execute``."""
    diag = _diagnosis(run)
    if diag is None:
        return Remedy("failed", None, "no diagnosis to act on")
    if not diag.data.get("problem"):
        finished = _finish_interrupted(run) if run.execute else []
        more = f"; completed {len(finished)} audit record(s) a crash left behind" if finished else ""
        return Remedy("not-needed", None, f"nothing to fix: the diagnosis found no problem{more}")
    lever = diag.data.get("lever")
    if not lever:
        return Remedy("no-lever", None, f"no lever within reach of this runbook: {diag.data.get('no_lever')}")
    args = dict(diag.data.get("lever_args") or {})
    try:
        return _LEVERS[lever](run, args)
    except Moved as exc:
        return Remedy("moved", lever, str(exc))
    except Conflict as exc:  # changed between this run's plan and its apply: another responder got there first
        return Remedy("moved", lever, f"the state changed while this run acted, so nothing was changed by it: {exc}")
    except BadInput as exc:
        return Remedy("no-lever", lever, f"the {lever} lever cannot be planned: {exc}")
    except ChecksError as exc:
        return Remedy("failed", lever, f"the {lever} lever failed: {exc}")


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


class Moved(Exception):
    """The state the diagnosis saw is not the state now: the fix it chose is no longer this run's to make."""


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


def _bound(run: RunbookRun, lever: str, args: dict[str, Any], plan: Any) -> None:
    """Raise Moved when the plan was made against another state than the one diagnosed (unless a version was
    named: then the operator's request, not the diagnosis, is what is acted on)."""
    if str(run.params.get("to_version") or "").strip() or plan.observed is None:
        return
    for seen in diagnosed_state(run, lever, args):
        if _token(seen) != _token(plan.observed):
            raise Moved(f"the state the diagnosis saw ({_token(seen)[:12]}) is not the current one "
                        f"({_token(plan.observed)[:12]}): another responder or a publish changed it since, so this "
                        "run changed nothing; the verify steps say whether the surface is fine now")


def _token(value: str) -> str:
    return str(value).strip().removeprefix("W/").strip('"')


def _manifest_rollback(run: RunbookRun, args: dict[str, Any]) -> Remedy:
    to = args.get("to") or None
    kinds = args.get("kinds") or None
    plan = plan_rollback(run.target, run.tenant, run.surface, to=to, previous=to is None, kind=args.get("kind"),
                         kinds=None if args.get("kind") else kinds, reason=run.reason)
    _bound(run, "manifest-rollback", args, plan)
    actions = [apply_rollback(run.target, plan, execute=run.execute, **_actor_kwargs(run, main=True))]
    if run.execute and actions[0].status == "noop":
        raise Moved("the manifest is already in the state this run planned: another responder made this change, "
                    "so this run changed nothing")
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
    _bound(run, "doc-revert", args, plan)
    # Without a registry to record in, our audit record stays with the run: in its folder, beside the run record.
    action = apply_revert(run.target, plan, execute=run.execute, audit_dir=run.out_dir,
                          **_actor_kwargs(run, main=True))
    if run.execute and action.status == "noop":
        raise Moved(f"the {kind} of {run.tenant} is already the version this run planned: another responder made "
                    "this change, so this run changed nothing")
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
    what = str(args.get("what") or "run the given command")
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


_LEVERS = {
    "manifest-rollback": _manifest_rollback,
    "doc-revert": _doc_revert,
    "cache-invalidate": _cache_invalidate,
    "command": _command,
    "hold": _hold,
}
