"""Audit records of applied actions: who, when, why, runbook, before, after and the plan hash.

One object per applied action, under ``<registry>/audit/<tenant>/<scope>/`` in the same store as the registry, written
create-only (S3 ``If-None-Match``; a hard link for files) and never rewritten: S3 has no append, and an audit trail
that can be edited is not one. ``scope`` is the surface for surface-level actions (manifest rollback, a cache
invalidation of one surface) and :data:`TENANT_SCOPE` for tenant-wide ones (config and rules reverts, invalidations
of every surface). The service keeps its own audit log of config, rules and cache changes as well.
"""

from __future__ import annotations

import os
import pwd
import socket
from datetime import UTC, datetime
from typing import Any

from . import jsonio
from .config import Target, prove_under, safe_segment
from .errors import ChecksError, InvalidObject, NotFound
from .results import Plan
from .store import Stores
from .timefmt import format_z

TENANT_SCOPE = "_tenant"


def who(actor: str | None = None) -> str:
    """The person or system acting: ``actor``, else ``$RECSYS_ACTOR``, else ``$USER``/``$USERNAME``, else (in
    containers, CI and ``kubectl exec``, where neither is set) the account's login name and the host: ``name@host``."""
    named = actor or os.environ.get("RECSYS_ACTOR") or os.environ.get("USER") or os.environ.get("USERNAME")
    if named:
        return named
    try:
        login = pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, OSError):
        login = f"uid-{os.getuid()}"
    return f"{login}@{socket.gethostname() or 'unknown-host'}"


def audit_prefix(target: Target, tenant: str, scope: str) -> str:
    """URI prefix of the audit objects of one tenant and scope (raises BadInput when it cannot be placed)."""
    root = target.audit_root()
    return prove_under(f"{root}/audit/{safe_segment(tenant, 'tenant')}/{safe_segment(scope, 'scope')}/", root + "/")


def audit_uri(target: Target, tenant: str, scope: str, plan: Plan, now: datetime) -> str:
    """Where the audit object of ``plan`` applied at ``now`` goes: sortable by time (to the microsecond, so that the
    same plan applied twice in one second, e.g. a cache invalidation, gets two records), unique per plan."""
    stamp = now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond:06d}Z"
    return audit_prefix(target, tenant, scope) + f"{stamp}-{plan.plan_hash[:12]}.json"


def record(plan: Plan, *, tenant: str, scope: str, now: datetime, actor: str | None, runbook: str | None,
           before: Any, after: Any, **extra: Any) -> dict[str, Any]:
    """The audit document of an applied plan."""
    return {
        "v": 1,
        "action": plan.action,
        "tenant": tenant,
        "surface": None if scope == TENANT_SCOPE else scope,
        "who": who(actor),
        "when": format_z(now),
        "why": plan.reason,
        "runbook": runbook,
        "plan_hash": plan.plan_hash,
        "target": plan.target,
        "changes": plan.changes,
        "before": before,
        "after": after,
        **extra,
    }


def write(stores: Stores, uri: str, doc: dict[str, Any]) -> str:
    """Write one audit object create-only; raises Conflict if the name exists (it is never overwritten)."""
    body = (jsonio.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    stores.put(uri, body, if_none_match=True)
    return uri


def read(target: Target, tenant: str, scope: str, *, stores: Stores | None = None) -> list[dict[str, Any]]:
    """The audit objects of one tenant and scope, newest first, each with its ``uri``; unreadable ones flagged."""
    prefix = audit_prefix(target, tenant, scope)
    st = stores or Stores(target)
    try:
        out = []
        for uri in sorted(st.list(prefix), reverse=True):
            if not uri.endswith(".json"):
                continue
            try:
                data, _ = st.get(uri)
                doc = jsonio.loads(data)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                doc["uri"] = uri
            except (NotFound, InvalidObject, ValueError, UnicodeDecodeError) as exc:
                doc = {"uri": uri, "error": f"unreadable audit record {uri}: {exc}"}
            out.append(doc)
        return out
    finally:
        if stores is None:
            st.close()


def record_service_change(target: Target, plan: Plan, *, tenant: str, scope: str, now: datetime | None,
                          actor: str | None, runbook: str | None, request_id: str | None, before: Any,
                          after: Any) -> tuple[str | None, str | None]:
    """Write our audit object of a change the service has already applied (and audited itself).

    Returns ``(uri, None)``, or ``(None, problem)`` when the object could not be written: the change happened and
    the service's audit log has it, so the failure is reported to the operator, not raised.
    """
    now = now or datetime.now(UTC)
    uri = audit_uri(target, tenant, scope, plan, now)
    doc = record(plan, tenant=tenant, scope=scope, now=now, actor=actor, runbook=runbook, before=before,
                 after=after, service_request_id=request_id)
    try:
        with Stores(target) as st:
            return write(st, uri, doc), None
    except ChecksError as exc:
        return None, (f"our audit record {uri} could not be written ({exc}); the service's audit log has the "
                      f"change (request id {request_id})")
