"""The "stop shipping" lever: a hold marker beside a surface's manifest that publishers must respect.

The marker is ``hold.json`` in the manifest's folder (``<registry>/current/<tenant>/<surface>/hold.json``, derived
from the manifest template), in the same store: a file or an S3 object. Setting and clearing are actions like the
others: a plan first, dry-run by default, compare-and-swap on the marker's ETag, one audit record per change, and
idempotent. Nothing is deleted: clearing writes the marker again with ``held: false`` (keeping who cleared it and
why), so the object itself shows the last change and the audit trail shows them all.

Marker (v1)::

    {"v": 1, "tenant": "demo", "surface": "home", "held": true, "reason": "...", "by": "alice",
     "at": "2026-01-02T03:04:05Z", "plan_hash": "<hex>"}

A marker that cannot be read as this is treated as held (fail closed): a publish gated on a broken marker waits
for a person rather than shipping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from . import audit, guard, jsonio
from .config import Target, safe_segment
from .errors import BadInput, ChecksError, Conflict, NotFound
from .results import ActionResult, CheckResult, Plan
from .store import TargetStores
from .timefmt import format_z

__all__ = ["apply_hold", "check_hold", "clear_hold", "hold_uri", "plan_hold", "read_hold", "set_hold"]

_MANIFEST_NAME = "/manifest.json"
_MAX_MARKER_BYTES = 64 * 1024


def hold_uri(target: Target, tenant: str, surface: str) -> str:
    """URI of the surface's hold marker: ``hold.json`` beside its manifest."""
    uri = target.manifest_uri(tenant, surface)
    if not uri.endswith(_MANIFEST_NAME):
        raise BadInput(f"cannot place the hold marker: the manifest URI {uri} does not end in {_MANIFEST_NAME}; "
                       "use the suite's registry layout for RECSYS_ARTIFACT_MANIFEST_TEMPLATE")
    return uri[: -len(_MANIFEST_NAME)] + "/hold.json"


def _parse(raw: bytes, tenant: str, surface: str) -> dict[str, Any]:
    if len(raw) > _MAX_MARKER_BYTES:
        raise BadInput(f"hold marker is larger than {_MAX_MARKER_BYTES} bytes")
    doc = jsonio.load_object(raw, "hold marker")
    if doc.get("v") != 1 or not isinstance(doc.get("held"), bool):
        raise BadInput("hold marker is not a v1 marker with a boolean 'held'")
    if (doc.get("tenant"), doc.get("surface")) != (tenant, surface):
        raise BadInput(f"hold marker is for {doc.get('tenant')}/{doc.get('surface')}, not {tenant}/{surface}")
    return doc


def read_hold(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None
              ) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """``(marker, etag, problem)``: ``(None, None, None)`` when there is no marker; a broken one has a problem."""
    uri = hold_uri(target, safe_segment(tenant, "tenant"), safe_segment(surface, "surface"))
    st = stores or TargetStores(target)
    try:
        try:
            raw, etag = st.get(uri)
        except NotFound:
            return None, None, None
    finally:
        if stores is None:
            st.close()
    try:
        return _parse(raw, tenant, surface), etag, None
    except BadInput as exc:
        return None, etag, f"{exc} at {uri}"


def _held(marker: dict[str, Any] | None, problem: str | None) -> bool:
    return problem is not None or bool(marker and marker.get("held"))


def _describe(marker: dict[str, Any] | None) -> str:
    if not marker:
        return ""
    parts = [f"since {marker.get('at')}" if marker.get("at") else "", f"by {marker.get('by')}" if marker.get("by")
             else "", f"reason: {marker.get('reason')}" if marker.get("reason") else ""]
    return ", ".join(p for p in parts if p)


def check_hold(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None) -> CheckResult:
    """``fail`` while the surface is held (or its marker is unreadable), ``ok`` otherwise; ``state`` is the ETag.

    A scheduler gates its publish job on this: exit 1 from ``recsys-checks hold status`` means do not publish.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    uri = hold_uri(target, tenant, surface)
    marker, etag, problem = read_hold(target, tenant, surface, stores=stores)
    held = _held(marker, problem)
    described = problem or _describe(marker) or ("held, no reason given" if held else "")
    data = {"tenant": tenant, "surface": surface, "held": held, "marker_uri": uri, "marker": marker,
            "problem": problem, "description": described}
    if problem:
        return CheckResult("hold.status", "fail", f"{tenant}/{surface} is treated as held: {problem}; set or clear "
                           f"the hold again with `recsys-checks hold set|clear --tenant {tenant} --surface {surface}`",
                           data, etag, uri)
    if held:
        return CheckResult("hold.status", "fail", f"{tenant}/{surface} is held ({_describe(marker)}): do not publish; "
                           f"clear with `recsys-checks hold clear --tenant {tenant} --surface {surface} --execute`",
                           data, etag, uri)
    last = f" (last cleared {_describe(marker)})" if marker else ""
    return CheckResult("hold.status", "ok", f"{tenant}/{surface} is not held{last}: publishing may go on", data,
                       etag, uri)


def plan_hold(target: Target, tenant: str, surface: str, *, held: bool, reason: str = "",
              stores: TargetStores | None = None) -> Plan:
    """Plan setting (``held=True``) or clearing the hold of a surface; changes nothing."""
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    uri = hold_uri(target, tenant, surface)
    audit.audit_prefix(target, tenant, surface)  # refuse now if audit records cannot be placed
    marker, etag, problem = read_hold(target, tenant, surface, stores=stores)
    before = "held" if _held(marker, problem) else "not held"
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

    ``plan_id`` and ``confirm``: see :mod:`recsys_checks.guard` (checked before anything is changed).

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
        if problem is None and _held(marker, None) == want and (marker is not None or not want):
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
