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
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from recsys_checks.core.errors import BadInput, ChecksError, ServiceProblem
from recsys_checks.core.results import CheckResult
from recsys_checks.reach.service import ADMIN_KINDS, ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment

DEFAULT_PROBE_SURFACE = "home"
MAX_AUDIT_SCAN = 5000  # audit entries read at most to find a document's history (the timeline reads as many)
MIN_PREFIX = 8  # the shortest version prefix a revert accepts for a document version


def canonical_jsonb(value: Any) -> str:
    """The canonical jsonb text of a JSON document (see the module docstring).

    Format twin of ``recsys_stack.formats.canonical_jsonb``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
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
    """Version of a config or rules document: bare 64-hex SHA-256 of its canonical jsonb text.

    Format twin of ``recsys_stack.formats.doc_version``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    return hashlib.sha256(canonical_jsonb(doc).encode("utf-8")).hexdigest()


def short(version: str | None) -> str | None:
    return version[:12] if version else version


def document_kind(kind: str) -> str:
    """``kind`` when it is a document kind of the admin API (config or rules); else :class:`BadInput`."""
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
    document_kind(kind)
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


def document_changes(c: ServiceClient, tenant: str, kind: str, limit: int | None = None) -> list[dict[str, Any]]:
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
    document_kind(kind)
    check = f"{kind}.history"
    try:
        with given_or_new_client(target, client) as c:
            _, current = c.get_doc(tenant, kind)
            entries = document_changes(c, tenant, kind, limit)
    except ServiceProblem as exc:  # the service answered; an unreachable one raises (exit 2)
        return _fail(check, exc, tenant, kind, target)
    rows = [change_row(e) for e in entries]
    data = {"tenant": tenant, "kind": kind, "version": current, "changes": rows}
    n = len(rows)
    return CheckResult(
        check, "ok", f"{n} {kind} change{'s' if n != 1 else ''} of {tenant} in the audit log; current version "
        f"{short(current)}", data, current, target.base_url,
    )


def known_versions(entries: list[dict[str, Any]], current: str, current_doc: Any) -> dict[str, Any]:
    """Every version of the document the audit entries show (and the current one), each with its document."""
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


def previous_version(entries: list[dict[str, Any]], current: str, kind: str, tenant: str, how_to_list: str) -> str:
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
        entries = document_changes(c, tenant, kind)
    for entry in entries:
        before, after = entry.get("before_state"), entry.get("after_state")
        if before is None or after is None:
            continue
        if is_bad(after) and not is_bad(before):
            return {"when": entry.get("occurred_at"), "who": entry.get("actor_sub"),
                    "request_id": entry.get("request_id"), "before": doc_version(before), "after": doc_version(after)}
    return None


