"""Config and rules documents: show, history from the service's audit log, and revert with ``If-Match``.

A document's version is the SHA-256 of its canonical jsonb text, exactly as the service computes it (PostgreSQL's
jsonb output: object keys sorted by UTF-8 length then bytes, ``", "`` and ``": "`` separators, non-ASCII kept), so
the versions of the documents in ``before_state``/``after_state`` of the audit log can be recomputed here and a
revert can name any version the log has seen.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from recsys_checks.core.errors import BadInput, ChecksError, Conflict, ServiceProblem, Unreachable
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.judge import auditlog
from recsys_checks.judge.serving.docdiff import readable_change
from recsys_checks.judge.serving.documents import (
    DEFAULT_PROBE_SURFACE,
    MIN_PREFIX,
    diff,
    doc_version,
    document_changes,
    document_kind,
    known_versions,
    previous_version,
    short,
)
from recsys_checks.levers import audit, guard
from recsys_checks.reach.service import ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment

SETTLE_EVIDENCE_ENTRIES = 200  # the service's newest audit entries read to settle an intent a crash left


def plan_revert(
    target: Target,
    tenant: str,
    kind: str,
    *,
    to: str | None = None,
    previous: bool = False,
    reason: str = "",
    surface: str | None = None,
    client: ServiceClient | None = None,
) -> Plan:
    """What reverting the tenant's config or rules to a version seen in the audit log would change.

    ``to`` is a version (or an unambiguous prefix of at least 8 hex digits); ``previous`` is the newest version that
    first appeared before the current one did. ``surface`` is the surface the verification probe asks on after the revert (default ``home``).
    Nothing is changed.
    """
    safe_segment(tenant, "tenant")
    document_kind(kind)
    if surface is not None:
        safe_segment(surface, "surface")
    if (to is None) == (not previous):
        raise BadInput(f"say which {kind} version to revert to: pass exactly one of --to VERSION or --previous")
    how_to_list = f"list versions with `recsys-checks {kind} history --tenant {tenant}`"
    with given_or_new_client(target, client) as c:
        current_doc, current = c.get_doc(tenant, kind)
        entries = document_changes(c, tenant, kind)
    docs = known_versions(entries, current, current_doc)
    if previous:
        wanted = previous_version(entries, current, kind, tenant, how_to_list)
    else:
        text = (to or "").strip().lower()
        matches = [v for v in docs if v == text or (len(text) >= MIN_PREFIX and v.startswith(text))]
        if not matches:
            raise BadInput(f"unknown {kind} version {to!r} for tenant {tenant}: it is not in the service's audit log; "
                           f"{how_to_list}")
        if len(matches) > 1:
            raise BadInput(f"{kind} version prefix {to!r} is ambiguous ({len(matches)} versions); give more digits")
        wanted = matches[0]
    target_doc = docs[wanted]
    return Plan(
        action=f"{kind}.revert",
        target=f"{tenant}/{kind}",
        observed=current,
        changes=[{"what": f"{kind} version of {tenant}", "before": current, "after": wanted}],
        reason=reason,
        details={
            "tenant": tenant,
            "kind": kind,
            "surface": surface or DEFAULT_PROBE_SURFACE,
            "document": target_doc,
            "diff": diff(current_doc, target_doc),
            # The same change as a person reads it (rules added and removed, fields before → after): what a plan
            # shows; "diff" above is every field, for --full-diff and --json.
            "change": readable_change(kind, current_doc, target_doc),
        },
        deployment=target.deployment,
    )


def _change_summary(plan: Plan) -> str:
    change = plan.details.get("change") or {}
    return str(change.get("summary") or f"{len(plan.details.get('diff') or [])} field(s) change")


def verify_version(
    c: ServiceClient, target: Target, tenant: str, kind: str, expected: str, surface: str
) -> CheckResult:
    """Does a probe request report ``meta.<kind>_version == expected``?"""
    check = f"{kind}.verify"
    field = f"{kind}_version"
    body = ServiceClient.recommend_body(surface, user_id="runbook-verify", k=1)
    try:
        meta = (c.recommend(tenant, body).get("meta") or {})
    except (Unreachable, ServiceProblem) as exc:
        return CheckResult(check, "fail", f"cannot verify the served {kind} version: {exc}",
                           {"tenant": tenant, "surface": surface, "expected": expected}, None, target.base_url)
    served = meta.get(field)
    data = {"tenant": tenant, "surface": surface, "expected": expected, "served": served}
    if served is None:
        return CheckResult(check, "warn", f"the service's answer has no meta.{field}; cannot verify", data, None,
                           target.base_url)
    if served != expected:
        return CheckResult(check, "fail", f"the service still serves {kind} {short(served)} for {tenant}/{surface}, "
                           f"not {short(expected)}; invalidate the {kind} cache again and re-check", data, served,
                           target.base_url)
    return CheckResult(check, "ok", f"the service serves {kind} {short(served)} for {tenant}/{surface}", data, served,
                       target.base_url)


def _written_versions(c: ServiceClient, tenant: str, kind: str) -> list[str]:
    """The versions of ``kind`` the service's own audit log shows written lately (evidence for settling an intent
    a crash left); empty when the log cannot be read (settlement then has only the state now)."""
    try:
        entries = list(c.audit(tenant, limit=100, max_entries=SETTLE_EVIDENCE_ENTRIES))
    except ChecksError:
        return []
    return [doc_version(e["after_state"]) for e in entries
            if e.get("action") == f"{kind}.update" and e.get("after_state") is not None]


def apply_revert(
    target: Target,
    plan: Plan,
    *,
    execute: bool = False,
    actor: str | None = None,
    runbook: str | None = None,
    client: ServiceClient | None = None,
    now: datetime | None = None,
    plan_id: str | None = None,
    confirm: str | None = None,
    audit_dir: str | os.PathLike[str] | None = None,
) -> ActionResult:
    """Apply a revert plan: dry-run by default; with ``execute``, PUT with ``If-Match`` on the observed version.

    Then invalidate the service's cache for that document and verify the served version on a probe request. The
    service's own audit log records the change (``actor`` is sent as ``X-Actor``) and an audit object of ours records
    who, why, the runbook and the plan under ``<registry>/audit/<tenant>/_tenant/``, or, when no registry is
    configured or it cannot be read or written, under ``<dir>/audit/<tenant>/_tenant/`` of the local folder
    ``RECSYS_AUDIT_DIR``, else ``audit_dir`` (a runbook run's folder), else the per-user state folder (see
    :func:`recsys_checks.levers.audit.place_for_service_change`); the summary says where. Raises
    :class:`~recsys_checks.core.errors.Conflict` when the document changed since the plan.
    """
    tenant, kind = plan.details["tenant"], document_kind(plan.details["kind"])
    surface = plan.details.get("surface") or DEFAULT_PROBE_SURFACE
    wanted = plan.changes[0]["after"]
    move = f"{kind} of {tenant} from {short(plan.observed)} to {short(wanted)}"
    if not execute:
        return guard.dry_run(plan, already=f"{kind} of {tenant} is already {short(wanted)}",
                             would=f"revert {move} ({_change_summary(plan)})")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    actor = audit.who(actor)
    if target.has_registry:
        auditlog.audit_prefix(target, tenant, auditlog.TENANT_SCOPE)  # refuse before changing anything if it cannot be placed
    else:
        auditlog.local_root(target, audit_dir)  # a local folder that cannot be one is refused before anything changes
    if not plan.observed:
        raise BadInput(f"the service reported no version (ETag) for the {kind} of {tenant}, so the revert cannot be "
                       "made conditional (If-Match) and is refused; check that RECSYS_BASE_URL is recsys-service")
    with given_or_new_client(target, client, actor=actor) as c:
        _, current = c.get_doc(tenant, kind)
        if not current:
            raise BadInput(f"the service reported no version (ETag) for the {kind} of {tenant}: refusing to write "
                           "without a version to compare against")
        place = audit.place_for_service_change(target, tenant, auditlog.TENANT_SCOPE, current, local_dir=audit_dir,
                                               landed=_written_versions(c, tenant, kind), only=f"{kind}.")
        if current == wanted:
            verification = verify_version(c, target, tenant, kind, wanted, surface)
            return ActionResult("noop", f"{kind} of {tenant} is already {short(wanted)}; nothing changed", plan,
                                None, verification)
        if current != plan.observed:
            raise Conflict(f"{kind} of {tenant} changed since the plan (planned against {short(plan.observed)}, now "
                           f"{short(current)}); nothing changed — make a new plan")
        intent_uri, intent, place = audit.begin_at(
            place, target, plan, tenant=tenant, scope=auditlog.TENANT_SCOPE, now=now, actor=actor, runbook=runbook,
            before=plan.observed, after=wanted, current=current, expect={"observed": plan.observed, "result": wanted},
        )
        new_version = _put_with_intent(c, target, plan, tenant, kind, intent_uri, intent)
        request_id, attempts = c.last_request_id, c.last_attempts
        # The document has changed: from here on a failure is reported, never raised, so that the audit record
        # below is always written and the operator is told the revert stands.
        try:
            c.invalidate(tenant, [kind])
            invalidated = f"{kind} cache invalidated"
        except ChecksError as exc:
            invalidated = (f"{kind} cache NOT invalidated ({exc}); run `recsys-checks cache invalidate --tenant "
                           f"{tenant} --targets {kind} --execute`")
        verification = verify_version(c, target, tenant, kind, wanted, surface)
    note = "" if not new_version or new_version == wanted else f" (the service reports {short(new_version)})"
    if attempts > 1:
        note += f" in {attempts} tries (the service failed for a moment; the write is conditional, so it applied once)"
    summary = f"reverted {move}{note}; {invalidated}; verification: {verification.status}"
    audit_ref, problem = audit.finish_service_change(target, intent_uri, intent, request_id=request_id,
                                                     after=new_version or wanted)
    if problem:
        summary += f"; {problem}"
    elif place.local:
        summary += f"; {place.describe(target)}"
    return ActionResult("applied", summary, plan, audit_ref, verification, attempts=attempts)


def _put_with_intent(c: ServiceClient, target: Target, plan: Plan, tenant: str, kind: str, intent_uri: str,
                     intent: dict[str, Any]) -> str:
    """PUT the planned document with ``If-Match``; when the service surely did not apply it, complete the intent as
    abandoned before raising (Conflict for a 409)."""
    try:
        _, new_version = c.put_doc(tenant, kind, plan.details["document"], if_match=plan.observed)
    except ServiceProblem as p:
        if p.status == 409:
            audit.finish_service_change(target, intent_uri, intent, request_id=c.last_request_id,
                                        state="abandoned", note="the service refused the If-Match")
            raise Conflict(f"{kind} of {tenant} changed since the plan (the service answered 409 "
                           f"{p.code or ''} to If-Match {short(plan.observed)}); nothing changed — make a new "
                           "plan") from None
        if not audit.may_have_happened(p):
            audit.finish_service_change(target, intent_uri, intent, request_id=c.last_request_id,
                                        state="abandoned", note=f"not done: {p}")
        raise
    except Unreachable as exc:
        if not audit.may_have_happened(exc):
            audit.finish_service_change(target, intent_uri, intent, request_id=c.last_request_id,
                                        state="abandoned", note=f"not done: {exc}")
        raise
    return new_version


SETTLE_EVIDENCE_ENTRIES = 200  # the service's newest audit entries read to settle an intent a crash left
