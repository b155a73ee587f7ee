"""Config and rules documents: show, history from the service's audit log, and revert with ``If-Match``.

A document's version is the SHA-256 of its canonical jsonb text, exactly as the service computes it (PostgreSQL's
jsonb output: object keys sorted by UTF-8 length then bytes, ``", "`` and ``": "`` separators, non-ASCII kept), so
the versions of the documents in ``before_state``/``after_state`` of the audit log can be recomputed here and a
revert can name any version the log has seen.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from . import audit, guard
from .config import Target, safe_segment
from .errors import BadInput, ChecksError, Conflict, Unreachable
from .results import ActionResult, CheckResult, Plan
from .service import ADMIN_KINDS, ServiceClient, ServiceProblem, given_or_new_client

DEFAULT_PROBE_SURFACE = "home"
SETTLE_EVIDENCE_ENTRIES = 200  # the service's newest audit entries read to settle an intent a crash left
MAX_AUDIT_SCAN = 5000  # audit entries read at most to find a document's history (the timeline reads as many)
_MIN_PREFIX = 8


def canonical_jsonb(value: Any) -> str:
    """The canonical jsonb text of a JSON document (see the module docstring)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        inner = ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {canonical_jsonb(value[k])}" for k in keys)
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(canonical_jsonb(v) for v in value) + "]"
    if isinstance(value, Decimal):  # a number read as written: jsonb keeps its digits, never an exponent
        return format(value.copy_abs() if value.is_zero() else value, "f")
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)  # jsonb's numeric never prints an exponent: 1e-07 is 0.0000001
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    return json.dumps(value, ensure_ascii=False)


def doc_version(doc: Any) -> str:
    """Version of a config or rules document: bare 64-hex SHA-256 of its canonical jsonb text."""
    return hashlib.sha256(canonical_jsonb(doc).encode("utf-8")).hexdigest()


def short(version: str | None) -> str | None:
    return version[:12] if version else version


def _kind(kind: str) -> str:
    if kind not in ADMIN_KINDS:
        raise BadInput(f"unknown document kind {kind!r}: use config or rules")
    return kind


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix or "(document)": value}


def diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Leaf-level differences between two documents as ``[{path, before, after}]`` (``None`` = absent)."""
    a, b = _flatten(before), _flatten(after)
    return [
        {"path": path, "before": a.get(path), "after": b.get(path)}
        for path in sorted(set(a) | set(b))
        if a.get(path) != b.get(path) or (path in a) != (path in b)
    ]


def _fail(check: str, exc: ChecksError, tenant: str, kind: str, target: Target) -> CheckResult:
    data: dict[str, Any] = {"tenant": tenant, "kind": kind, "exit_code": exc.exit_code}
    if isinstance(exc, ServiceProblem):
        data["problem"] = exc.to_dict()
    return CheckResult(check, "fail", str(exc), data, None, target.base_url)


def check_document(target: Target, tenant: str, kind: str, *, client: ServiceClient | None = None) -> CheckResult:
    """The tenant's current config or rules document; ``state`` is its version (the ``ETag``)."""
    safe_segment(tenant, "tenant")
    _kind(kind)
    check = f"{kind}.show"
    try:
        with given_or_new_client(target, client) as c:
            doc, version = c.get_doc(tenant, kind)
    except ServiceProblem as exc:  # the service answered; an unreachable one raises (exit 2)
        return _fail(check, exc, tenant, kind, target)
    computed = doc_version(doc)
    data = {"tenant": tenant, "kind": kind, "version": version, "document": doc}
    if version and computed != version:
        data["computed_version"] = computed
        return CheckResult(
            check, "warn",
            f"{kind} of {tenant} is version {short(version)}, but its canonical hash is {short(computed)}: versions "
            "in the audit history may not be recognised for revert", data, version, target.base_url,
        )
    return CheckResult(check, "ok", f"{kind} of {tenant} is version {short(version)}", data, version,
                       target.base_url)


def _entries(c: ServiceClient, tenant: str, kind: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Audit entries that changed this kind of document, newest first."""
    action = f"{kind}.update"
    out = []
    for entry in c.audit(tenant, limit=200, max_entries=MAX_AUDIT_SCAN):
        if entry.get("action") == action or (
            entry.get("entity_type") == kind and entry.get("action") != "cache.invalidate"
        ):
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
    return out


def change_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One audit entry as a table row: when, who, before → after (versions recomputed from the states)."""
    before, after = entry.get("before_state"), entry.get("after_state")
    return {
        "when": entry.get("occurred_at"),
        "who": entry.get("actor_sub"),
        "actor_type": entry.get("actor_type"),
        "before": short(doc_version(before)) if before is not None else None,
        "after": short(doc_version(after)) if after is not None else None,
        "request_id": entry.get("request_id"),
        "id": entry.get("id"),
    }


def check_document_history(
    target: Target, tenant: str, kind: str, limit: int = 20, *, client: ServiceClient | None = None
) -> CheckResult:
    """The last ``limit`` changes of the tenant's config or rules from the service's audit log, newest first."""
    safe_segment(tenant, "tenant")
    _kind(kind)
    check = f"{kind}.history"
    try:
        with given_or_new_client(target, client) as c:
            _, current = c.get_doc(tenant, kind)
            entries = _entries(c, tenant, kind, limit)
    except ServiceProblem as exc:  # the service answered; an unreachable one raises (exit 2)
        return _fail(check, exc, tenant, kind, target)
    rows = [change_row(e) for e in entries]
    data = {"tenant": tenant, "kind": kind, "version": current, "changes": rows}
    n = len(rows)
    return CheckResult(
        check, "ok", f"{n} {kind} change{'s' if n != 1 else ''} of {tenant} in the audit log; current version "
        f"{short(current)}", data, current, target.base_url,
    )


def _known_versions(entries: list[dict[str, Any]], current: str, current_doc: Any) -> dict[str, Any]:
    docs: dict[str, Any] = {current: current_doc}
    for entry in entries:
        for key in ("after_state", "before_state"):
            state = entry.get(key)
            if state is not None:
                docs.setdefault(doc_version(state), state)
    return docs


def introduction_order(entries: list[dict[str, Any]]) -> list[str]:
    """Versions in the order they first appeared in the audit log (``entries`` newest first), oldest first."""
    order: list[str] = []
    for entry in reversed(entries):
        for key in ("before_state", "after_state"):
            state = entry.get(key)
            if state is not None and (version := doc_version(state)) not in order:
                order.append(version)
    return order


def _previous_version(entries: list[dict[str, Any]], current: str, kind: str, tenant: str, how_to_list: str) -> str:
    """The newest version that first appeared before the current one did.

    Ordered by first appearance rather than "undo the last change", so that running ``--previous`` again after a
    revert steps further back instead of flipping back to the bad version it just replaced.
    """
    order = introduction_order(entries)
    if current not in order:
        raise BadInput(f"the audit log does not show when {kind} {short(current)} of {tenant} first appeared, so "
                       f"there is no known previous version; {how_to_list} and pass --to VERSION")
    index = order.index(current)
    if index == 0:
        raise BadInput(f"{kind} {short(current)} of {tenant} is the oldest version in the audit log: there is no "
                       f"previous one; {how_to_list}")
    return order[index - 1]


def find_offending_change(target: Target, tenant: str, kind: str, is_bad: Callable[[Any], bool], *,
                          client: ServiceClient | None = None) -> dict[str, Any] | None:
    """The newest change of the tenant's ``kind`` that made it bad: its audit entry's ``before_state`` passes
    ``is_bad`` as good and its ``after_state`` as bad. ``None`` when the audit log shows no such change.

    Returns ``{"when", "who", "request_id", "before", "after"}`` with the versions before and after it: reverting
    to ``before`` undoes exactly that change (and anything after it, which the plan shows).
    """
    with given_or_new_client(target, client) as c:
        entries = _entries(c, tenant, kind)
    for entry in entries:
        before, after = entry.get("before_state"), entry.get("after_state")
        if before is None or after is None:
            continue
        if is_bad(after) and not is_bad(before):
            return {"when": entry.get("occurred_at"), "who": entry.get("actor_sub"),
                    "request_id": entry.get("request_id"), "before": doc_version(before), "after": doc_version(after)}
    return None


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
    _kind(kind)
    if surface is not None:
        safe_segment(surface, "surface")
    if (to is None) == (not previous):
        raise BadInput(f"say which {kind} version to revert to: pass exactly one of --to VERSION or --previous")
    how_to_list = f"list versions with `recsys-checks {kind} history --tenant {tenant}`"
    with given_or_new_client(target, client) as c:
        current_doc, current = c.get_doc(tenant, kind)
        entries = _entries(c, tenant, kind)
    docs = _known_versions(entries, current, current_doc)
    if previous:
        wanted = _previous_version(entries, current, kind, tenant, how_to_list)
    else:
        text = (to or "").strip().lower()
        matches = [v for v in docs if v == text or (len(text) >= _MIN_PREFIX and v.startswith(text))]
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
        },
        deployment=target.deployment,
    )


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
    ``RECSYS_AUDIT_DIR``, else ``audit_dir`` (a runbook run's folder), else ``./recsys-audit`` (see
    :func:`recsys_checks.audit.place_for_service_change`); the summary says where. Raises
    :class:`~recsys_checks.errors.Conflict` when the document changed since the plan.
    """
    tenant, kind = plan.details["tenant"], _kind(plan.details["kind"])
    surface = plan.details.get("surface") or DEFAULT_PROBE_SURFACE
    wanted = plan.changes[0]["after"]
    move = f"{kind} of {tenant} from {short(plan.observed)} to {short(wanted)}"
    if not execute:
        return guard.dry_run(plan, already=f"{kind} of {tenant} is already {short(wanted)}",
                             would=f"revert {move} ({len(plan.details.get('diff') or [])} field(s) change)")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    actor = audit.who(actor)
    if target.has_registry:
        audit.audit_prefix(target, tenant, audit.TENANT_SCOPE)  # refuse before changing anything if it cannot be placed
    else:
        audit.local_root(target, audit_dir)  # a local folder that cannot be one is refused before anything changes
    if not plan.observed:
        raise BadInput(f"the service reported no version (ETag) for the {kind} of {tenant}, so the revert cannot be "
                       "made conditional (If-Match) and is refused; check that RECSYS_BASE_URL is recsys-service")
    with given_or_new_client(target, client, actor=actor) as c:
        _, current = c.get_doc(tenant, kind)
        if not current:
            raise BadInput(f"the service reported no version (ETag) for the {kind} of {tenant}: refusing to write "
                           "without a version to compare against")
        place = audit.place_for_service_change(target, tenant, audit.TENANT_SCOPE, current, local_dir=audit_dir,
                                               landed=_written_versions(c, tenant, kind), only=f"{kind}.")
        if current == wanted:
            verification = verify_version(c, target, tenant, kind, wanted, surface)
            return ActionResult("noop", f"{kind} of {tenant} is already {short(wanted)}; nothing changed", plan,
                                None, verification)
        if current != plan.observed:
            raise Conflict(f"{kind} of {tenant} changed since the plan (planned against {short(plan.observed)}, now "
                           f"{short(current)}); nothing changed — make a new plan")
        intent_uri, intent, place = audit.begin_at(
            place, target, plan, tenant=tenant, scope=audit.TENANT_SCOPE, now=now, actor=actor, runbook=runbook,
            before=plan.observed, after=wanted, current=current, expect={"observed": plan.observed, "result": wanted},
        )
        new_version = _put_with_intent(c, target, plan, tenant, kind, intent_uri, intent)
        request_id = c.last_request_id
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
    summary = f"reverted {move}{note}; {invalidated}; verification: {verification.status}"
    audit_ref, problem = audit.finish_service_change(target, intent_uri, intent, request_id=request_id,
                                                     after=new_version or wanted)
    if problem:
        summary += f"; {problem}"
    elif place.local:
        summary += f"; {place.describe(target)}"
    return ActionResult("applied", summary, plan, audit_ref, verification)


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
