"""The "stop shipping" lever: set or clear the hold marker beside a surface's manifest, dry-run by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from recsys_checks.core.errors import BadInput, ChecksError, Conflict
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.core.timefmt import format_z
from recsys_checks.judge.registry.hold import check_hold, hold_uri, is_held, read_hold
from recsys_checks.levers import audit, guard
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store.router import TargetStores


def plan_hold(target: Target, tenant: str, surface: str, *, held: bool, reason: str = "",
              stores: TargetStores | None = None) -> Plan:
    """Plan setting (``held=True``) or clearing the hold of a surface; changes nothing."""
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    uri = hold_uri(target, tenant, surface)
    audit.audit_prefix(target, tenant, surface)  # refuse now if audit records cannot be placed
    marker, etag, problem = read_hold(target, tenant, surface, stores=stores)
    before = "held" if is_held(marker, problem) else "not held"
    if problem:  # a broken marker is rewritten either way, so the change is never a no-op
        before = "unreadable (treated as held)"
    after = "held" if held else "not held"
    return Plan(
        action="hold.set" if held else "hold.clear",
        target=uri,
        observed=etag,
        changes=[{"what": f"hold of {tenant}/{surface}", "before": before, "after": after}],
        reason=reason,
        details={"tenant": tenant, "surface": surface, "held": held, "marker_uri": uri, "before": marker,
                 "problem": problem},
    )



def apply_hold(target: Target, plan: Plan, *, execute: bool = False, actor: str | None = None,
               runbook: str | None = None, now: datetime | None = None, stores: TargetStores | None = None,
               plan_id: str | None = None, confirm: str | None = None) -> ActionResult:
    """Apply a hold plan; a dry-run unless ``execute``.

    ``plan_id`` and ``confirm``: see :mod:`recsys_checks.levers.guard` (checked before anything is changed).

    With execute: re-read the marker; already in the planned state → ``noop``; changed since the plan →
    :class:`Conflict` (nothing written); else write the marker with compare-and-swap on the observed ETag
    (create-only when there was none), then one audit record, then read the state back as verification.
    """
    if plan.action not in ("hold.set", "hold.clear"):
        raise BadInput(f"not a hold plan: {plan.action}")
    d = plan.details
    tenant, surface = safe_segment(d["tenant"], "tenant"), safe_segment(d["surface"], "surface")
    uri = hold_uri(target, tenant, surface)
    if uri != plan.target:
        raise BadInput(f"the plan was made for {plan.target}, but this target's hold marker is {uri}")
    want = bool(d["held"])
    verb = "set the hold on" if want else "clear the hold of"
    if not execute:
        return guard.dry_run(plan, already=f"{tenant}/{surface} is already {'held' if want else 'not held'}",
                             would=f"{verb} {tenant}/{surface}")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    now = now or datetime.now(UTC)
    st = stores or TargetStores(target)
    try:
        marker, etag, problem = read_hold(target, tenant, surface, stores=st)
        if problem is None and is_held(marker, None) == want and (marker is not None or not want):
            return ActionResult("noop", f"{tenant}/{surface} is already {'held' if want else 'not held'}; nothing "
                                "changed", plan, verification=check_hold(target, tenant, surface, stores=st))
        if etag != plan.observed:
            raise Conflict(f"the hold marker of {tenant}/{surface} changed since the plan (planned against "
                           f"{plan.observed}, now {etag}); nothing was changed: plan again and review")
        doc: dict[str, Any] = {"v": 1, "tenant": tenant, "surface": surface, "held": want, "reason": plan.reason,
                               "by": audit.who(actor), "at": format_z(now), "plan_hash": plan.plan_hash}
        if not want and marker:
            doc["previous"] = {k: marker.get(k) for k in ("reason", "by", "at")}
        body = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        new_etag = st.put(uri, body, if_match=plan.observed, if_none_match=plan.observed is None)
        audit_uri = audit.audit_uri(target, tenant, surface, plan, now)
        try:
            audit.write(st, audit_uri, audit.audit_record(
                plan, tenant=tenant, scope=surface, now=now, actor=actor, runbook=runbook,
                before={"etag": etag, "marker": marker, "problem": problem},
                after={"etag": new_etag, "marker": doc}, marker_uri=uri))
        except ChecksError as exc:
            raise ChecksError(f"the hold of {tenant}/{surface} WAS {'set' if want else 'cleared'} but its audit record "
                              f"{audit_uri} could not be written: {exc}; record the change by hand") from None
        verification = check_hold(target, tenant, surface, stores=st)
    finally:
        if stores is None:
            st.close()
    # Verification: a set hold must read back as held, a cleared one as not held.
    ok = verification.data.get("held") == want
    verification = CheckResult("hold.verify", "ok" if ok else "fail", verification.summary, verification.data,
                               verification.state, verification.target)
    return ActionResult("applied", f"{'set the hold on' if want else 'cleared the hold of'} {tenant}/{surface}",
                        plan, audit_uri, verification)



def set_hold(target: Target, tenant: str, surface: str, reason: str, *, execute: bool = False,
             actor: str | None = None, runbook: str | None = None,
             confirm: str | None = None) -> ActionResult:
    """Plan and apply setting the hold in one call (a notebook cell): a dry-run unless ``execute``."""
    plan = plan_hold(target, tenant, surface, held=True, reason=reason)
    return apply_hold(target, plan, execute=execute, actor=actor, runbook=runbook, confirm=confirm)



def clear_hold(target: Target, tenant: str, surface: str, reason: str, *, execute: bool = False,
               actor: str | None = None, runbook: str | None = None,
               confirm: str | None = None) -> ActionResult:
    """Plan and apply clearing the hold in one call (a notebook cell): a dry-run unless ``execute``."""
    plan = plan_hold(target, tenant, surface, held=False, reason=reason)
    return apply_hold(target, plan, execute=execute, actor=actor, runbook=runbook, confirm=confirm)
