"""Invalidate the service's caches (popularity artifacts, config, rules), dry-run by default.

The service caches the manifest and blobs for their TTLs and the admin documents until told otherwise, so a fixed
manifest or a reverted config can keep serving the old state; invalidating makes the next request reload.
Invalidation is idempotent: applying the same plan twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from recsys_checks.core.errors import BadInput, ChecksError, ServiceProblem, Unreachable
from recsys_checks.core.results import ActionResult, Plan
from recsys_checks.core.timefmt import parse_time
from recsys_checks.judge import auditlog
from recsys_checks.levers import audit, guard
from recsys_checks.reach.service import CACHE_TARGETS, ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment

# The service's clock and ours may differ a little: an invalidation it logged this much before an intent still counts.
CLOCK_SLACK = timedelta(seconds=2)


def parse_targets(targets: Iterable[str] | str) -> list[str]:
    """``"popularity,config"`` or a list → the validated, de-duplicated list, in the suite's order."""
    if isinstance(targets, str):
        targets = targets.split(",")
    names = {t.strip() for t in targets if t and t.strip()}
    if not names:
        raise BadInput(f"no cache targets given: pass one or more of {', '.join(CACHE_TARGETS)}")
    unknown = sorted(names - set(CACHE_TARGETS))
    if unknown:
        raise BadInput(f"unknown cache target(s) {', '.join(unknown)}: use {', '.join(CACHE_TARGETS)}")
    return [t for t in CACHE_TARGETS if t in names]


def plan_invalidate(
    target: Target, tenant: str, targets: Iterable[str] | str, *, surface: str | None = None, reason: str = ""
) -> Plan:
    """What invalidating ``targets`` for the tenant (optionally one surface) would do; changes nothing."""
    safe_segment(tenant, "tenant")
    if surface is not None:
        safe_segment(surface, "surface")
    names = parse_targets(targets)
    scope = f"{tenant}/{surface}" if surface else f"{tenant} (all surfaces)"
    return Plan(
        action="cache.invalidate",
        target=f"{tenant}/{surface}" if surface else tenant,
        observed=None,
        changes=[{"what": f"{name} cache of {scope}", "before": "cached", "after": "reload on next request"}
                 for name in names],
        reason=reason,
        details={"tenant": tenant, "surface": surface, "targets": names, "base_url": target.base_url},
        deployment=target.deployment,
    )


def _judge_by_service_log(c: ServiceClient, tenant: str):
    """Settle an invalidation a crash left by the service's own audit log: an invalidation it recorded at or after
    the intent means the change happened (``applied``); none, ``unknown`` (an invalidation leaves no state)."""
    try:
        entries = [e for e in c.audit(tenant, limit=100, max_entries=200) if e.get("action") == "cache.invalidate"]
    except ChecksError:
        entries = None
    times = [t for t in (parse_time(e.get("occurred_at")) for e in entries or []) if t is not None]

    def judge(intent: dict[str, Any]) -> str | None:
        when = parse_time(intent.get("when"))
        if when is not None and any(t >= when - CLOCK_SLACK for t in times):
            return "applied"
        return "unknown"

    return judge


def settle_invalidations(target: Target, tenant: str, surface: str | None, *,
                         client: ServiceClient | None = None) -> list[str]:
    """Complete the invalidation intents a crash left on a scope, judged by the service's own audit log."""
    with given_or_new_client(target, client) as c:
        return audit.settle_service(target, tenant, surface or auditlog.TENANT_SCOPE, None, only="cache.",
                                    judge=_judge_by_service_log(c, tenant))


def apply_invalidate(
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
) -> ActionResult:
    """Dry-run by default; with ``execute``, ask the service to drop the planned caches.

    The service audits the invalidation; an audit object of ours records who, why and the runbook under
    ``<registry>/audit/<tenant>/<surface or _tenant>/``.
    """
    tenant, surface, names = plan.details["tenant"], plan.details.get("surface"), plan.details["targets"]
    scope = f"{tenant}/{surface}" if surface else tenant
    if not execute:
        return guard.dry_run(plan, already=f"nothing to invalidate for {scope}",
                             would=f"invalidate the {', '.join(names)} cache(s) of {scope}")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    actor = audit.who(actor)
    audit_scope = surface or auditlog.TENANT_SCOPE
    auditlog.audit_prefix(target, tenant, audit_scope)  # refuse before acting if audit records cannot be placed
    with given_or_new_client(target, client, actor=actor) as c:
        # One read of the admin API first: an unreachable service, a refused key or an unknown tenant stops here,
        # before an intent is written for a change that cannot be made.
        c.audit_page(tenant, limit=1)
        audit.settle_service(target, tenant, audit_scope, None, only="cache.",
                             judge=_judge_by_service_log(c, tenant))
        if surface and target.has_registry:
            audit.settle_manifest(target, tenant, surface)
        intent_uri, intent = audit.begin_service_change(
            target, plan, tenant=tenant, scope=audit_scope, now=now, actor=actor, runbook=runbook, before="cached",
            after="reload on next request", expect={},
        )
        try:
            answer = c.invalidate(tenant, names, surface)
        except (ServiceProblem, Unreachable) as exc:
            if not audit.may_have_happened(exc):
                audit.finish_service_change(target, intent_uri, intent, request_id=c.last_request_id,
                                            state="abandoned", note=f"not done: {exc}")
            raise
        request_id = c.last_request_id
    counts = answer.get("invalidated") or {}
    shown = ", ".join(f"{k}: {v}" for k, v in counts.items()) if isinstance(counts, dict) else str(counts)
    summary = f"invalidated the {', '.join(names)} cache(s) of {scope}" + (f" ({shown})" if shown else "")
    uri, problem = audit.finish_service_change(target, intent_uri, intent, request_id=request_id,
                                               after={"invalidated": counts})
    if problem:
        summary += f"; {problem}"
    return ActionResult("applied", summary, plan, uri)
