"""Audit records of applied actions: who, when, why, runbook, before, after and the plan hash.

One object per applied action, under ``<registry>/audit/<tenant>/<scope>/`` in the same store as the registry, written
create-only (S3 ``If-None-Match``; a hard link for files) and never rewritten: S3 has no append, and an audit trail
that can be edited is not one. ``scope`` is the surface for surface-level actions (manifest rollback, a cache
invalidation of one surface) and :data:`TENANT_SCOPE` for tenant-wide ones (config and rules reverts, invalidations
of every surface). The service keeps its own audit log of config, rules and cache changes as well.

The trail survives a crash at any point. Before the change, an *intent* ``<name>.intent.json`` is written with what
the change expects to find afterwards (the manifest's new ETag, the document's new version); after the change, the
record ``<name>.json`` completes it. A process killed in between leaves an intent without a record; the next action
on the same scope *settles* it from evidence that does not move: an intent whose change is visible now, or whose
result a later action of ours planned against, or (config and rules) whose result the service's own audit log shows
written, is completed as ``applied`` at once; one whose change did not happen (the world is as the plan saw it and
nothing shows it landed) as ``abandoned``, and one that nothing can tell as ``unknown``. Those two wait until the
intent is older than :data:`SETTLE_GRACE`: a younger one may belong to an action still running in another process.

Config and rules reverts change the service only, so they do not need the registry: when none is configured
(``RECSYS_ARTIFACT_MANIFEST_TEMPLATE`` unset) or it cannot be read or written, their intent and record go to a local
folder laid out the same way, ``<dir>/audit/<tenant>/_tenant/``, written create-only as well (see :func:`place_for_service_change`):
``RECSYS_AUDIT_DIR`` when set, else the caller's default (a runbook run's folder), else the per-user state folder
(:func:`~recsys_checks.judge.auditlog.default_audit_dir`), whatever the working directory. They never write to the suite's default bucket, which nobody named. Manifest rollbacks and
holds act on the registry and keep needing it.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core import credentials, jsonio
from recsys_checks.core.errors import BadInput, ChecksError, Conflict, InvalidObject, NotFound
from recsys_checks.core.errors import ChecksError as _Error
from recsys_checks.core.results import Plan
from recsys_checks.core.timefmt import format_micro_z, parse_time
from recsys_checks.judge.auditlog import (
    INTENT_SUFFIX,
    TENANT_SCOPE,
    audit_prefix,
    audit_uri,
    load_record,
    local_root,
    record_uri,
)
from recsys_checks.reach.settings import (
    AUDIT_DIR_VARIABLE,
    Target,
)
from recsys_checks.reach.store import TargetStores

# An intent younger than this may belong to an action still running elsewhere (its deadline-bounded calls take
# well under a minute), so it is left alone.
SETTLE_GRACE = timedelta(minutes=2)


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
    import socket  # imported when an actor is named: read-only checks never need it

    return f"{login}@{socket.gethostname() or 'unknown-host'}"


@dataclass(frozen=True)
class Place:
    """Where the audit objects of one action go: ``root`` is the registry root, or a local folder's ``file://`` URI
    (then ``local`` is true and ``why`` says why the registry is not used). ``fallback`` is the local folder to use
    if the registry cannot be written after all."""

    root: str
    local: bool = False
    why: str | None = None
    fallback: str | None = None

    def describe(self, target: Target) -> str:
        """One clause for a summary: where the record went, and why when it is not the registry."""
        if not self.local:
            return ""
        folder = self.root.removeprefix("file://")
        chosen = AUDIT_DIR_VARIABLE if target.audit_dir else f"set {AUDIT_DIR_VARIABLE} to choose another"
        return f"our audit record is in the local folder {folder} ({chosen}) because {self.why}"


def audit_record(plan: Plan, *, tenant: str, scope: str, now: datetime, actor: str | None, runbook: str | None,
           before: Any, after: Any, **extra: Any) -> dict[str, Any]:
    """The audit document of an applied plan."""
    return {
        "v": 1,
        "action": plan.action,
        "tenant": tenant,
        "surface": None if scope == TENANT_SCOPE else scope,
        "who": who(actor),
        # Microseconds: the timeline orders a rollback after the publish it undid, even within one second.
        "when": format_micro_z(now),
        "why": plan.reason,
        "runbook": runbook,
        "plan_hash": plan.plan_hash,
        "deployment": plan.deployment,
        "target": plan.target,
        "changes": plan.changes,
        "before": before,
        "after": after,
        **extra,
    }


def write(stores: TargetStores, uri: str, doc: dict[str, Any]) -> str:
    """Write one audit object create-only; raises Conflict if the name exists (it is never overwritten)."""
    text = jsonio.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
    body = credentials.mask(text, extra=stores.target.secrets()).encode("utf-8")
    stores.put(uri, body, if_none_match=True)
    return uri


def begin(stores: TargetStores, target: Target, plan: Plan, *, tenant: str, scope: str, now: datetime,
          actor: str | None, runbook: str | None, before: Any, after: Any, expect: dict[str, Any],
          root: str | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:
    """Write the intent of a change about to be made (create-only); return its URI and document.

    ``expect`` says how a later run recognises the change in the world: ``{"observed": <state before>,
    "result": <state after>}`` (ETags or versions), or ``{}`` when the world cannot tell (a cache invalidation).
    ``root``: a local audit folder instead of the registry.
    """
    uri = audit_uri(target, tenant, scope, plan, now, root=root).removesuffix(".json") + INTENT_SUFFIX
    doc = audit_record(plan, tenant=tenant, scope=scope, now=now, actor=actor, runbook=runbook, before=before,
                 after=after, state="intent", expect=expect, **extra)
    write(stores, uri, doc)
    return uri, doc


def complete(stores: TargetStores, intent_uri: str, intent: dict[str, Any], *, state: str = "applied",
             note: str | None = None, **updates: Any) -> str:
    """Write the record completing an intent (create-only); an existing one (written by a concurrent settle)
    is accepted as is."""
    uri = record_uri(intent_uri)
    doc = {k: v for k, v in intent.items() if k not in ("uri", "expect")}
    doc.update(updates, state=state, intent=intent_uri)
    if note:
        doc["note"] = note
    try:
        write(stores, uri, doc)
    except Conflict:
        if not stores.exists(uri):
            raise
    return uri


def pending(stores: TargetStores, target: Target, tenant: str, scope: str, *,
            root: str | None = None) -> list[dict[str, Any]]:
    """Intents of one scope that no record completes, oldest first, each with its ``uri``."""
    uris = set(stores.list(audit_prefix(target, tenant, scope, root=root)))
    out = []
    for uri in sorted(u for u in uris if u.endswith(INTENT_SUFFIX)):
        if record_uri(uri) in uris:
            continue
        try:
            data, _ = stores.get(uri)
            doc = jsonio.loads(data)
        except (NotFound, InvalidObject, ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict):
            doc["uri"] = uri
            out.append(doc)
    return out


def settle(stores: TargetStores, target: Target, tenant: str, scope: str, judge: Callable[[dict[str, Any]], str | None],
           *, now: datetime | None = None, grace: timedelta = SETTLE_GRACE, root: str | None = None,
           only: str | None = None) -> list[str]:
    """Complete the intents a crash left behind; ``judge(intent)`` says ``applied``, ``abandoned``, ``unknown`` or
    ``None`` (cannot tell yet). Returns the records written."""
    now = now or datetime.now(UTC)
    written = []
    waiting = pending(stores, target, tenant, scope, root=root)
    intents = sorted(u for u in stores.list(audit_prefix(target, tenant, scope, root=root))
                     if u.endswith(INTENT_SUFFIX)) if waiting else []
    for intent in waiting:
        if only is not None and not str(intent.get("action") or "").startswith(only):
            continue  # another kind of action shares the scope: its state is not the one judged here
        outcome = judge(intent)
        if outcome is None:
            continue
        if outcome == "applied":
            outcome = _among_twins(stores, intents, intent, now=now, grace=grace)
            if outcome is None:
                continue
        if outcome != "applied" and _reached_later(stores, intents, intent):
            outcome = "applied"
        elif outcome != "applied" and _superseded(stores, intents, intent):
            # A later action of ours planned against the same state and landed: this intent's compare-and-swap
            # can never succeed now, so it is abandoned for certain, and need not wait.
            outcome = "settled-abandoned"
        when = parse_time(intent.get("when"))  # whole seconds in records written before microseconds
        # A change seen to have landed is settled at once: it cannot be in flight any more. "Abandoned" and
        # "unknown" wait out the grace, since the process that wrote the intent may still be about to act.
        if outcome == "settled-abandoned":
            outcome = "abandoned"
        elif outcome != "applied" and when is not None and now - when < grace:
            continue
        notes = {"applied": "completed by a later run: the change it announced is in place",
                 "abandoned": "the change it announced did not happen (the process stopped before it)",
                 "unknown": "settled by a later run, which cannot tell whether the change happened; check the "
                            "service's audit log"}
        written.append(complete(stores, intent["uri"], intent, state=outcome, note=notes.get(outcome),
                                settled_at=format_micro_z(now)))
    return written


# How many later intents of the scope are read for evidence that an earlier one's change landed.
_EVIDENCE_INTENTS = 50


def _among_twins(stores: TargetStores, intents: list[str], intent: dict[str, Any], *, now: datetime,
                 grace: timedelta) -> str | None:
    """An intent the state says landed, judged against its twins: other intents planned against the same state for
    the same result (the same change made by two processes within one second writes the same bytes). The
    compare-and-swap let at most one of them through, so the state cannot say which: a twin recorded ``applied``
    means this one was ``settled-abandoned``; with none recorded, wait out the grace (the winner records itself),
    then the first of them is ``applied`` and the rest abandoned. Without twins: ``applied``."""
    twins = _twins(stores, intents, intent)
    if not twins:
        return "applied"
    if any(load_record(stores, record_uri(uri)).get("state") == "applied" for uri in twins):
        return "settled-abandoned"
    when = parse_time(intent.get("when"))
    if when is not None and now - when < grace:
        return None
    return "applied" if intent["uri"] < min(twins) else "settled-abandoned"


def _twins(stores: TargetStores, intents: list[str], intent: dict[str, Any]) -> list[str]:
    """The nearby intents (within ``_EVIDENCE_INTENTS`` either side) expecting the same observed and result states."""
    expect = intent.get("expect") or {}
    pair = (_token(expect.get("observed")), _token(expect.get("result")))
    if pair[1] is None or intent.get("uri") not in intents:
        return []
    at = intents.index(intent["uri"])
    near = intents[max(0, at - _EVIDENCE_INTENTS):at] + intents[at + 1:at + 1 + _EVIDENCE_INTENTS]
    out = []
    for uri in near:
        other = load_record(stores, uri).get("expect") or {}
        if isinstance(other, dict) and (_token(other.get("observed")), _token(other.get("result"))) == pair:
            out.append(uri)
    return out


def _reached_later(stores: TargetStores, intents: list[str], intent: dict[str, Any]) -> bool:
    """Did a later action of ours plan against the state this intent expected? Then that state was reached: the
    change landed, whatever the state is now (evidence that does not move)."""
    result = _token((intent.get("expect") or {}).get("result"))
    if result is None or intent.get("uri") not in intents:
        return False
    later = intents[intents.index(intent["uri"]) + 1:][:_EVIDENCE_INTENTS]
    return result in reached_states(load_record(stores, uri) for uri in later)


def _superseded(stores: TargetStores, intents: list[str], intent: dict[str, Any]) -> bool:
    """Did a later action of ours, planned against the same state as this intent, complete as applied?"""
    observed = _token((intent.get("expect") or {}).get("observed"))
    if observed is None or intent.get("uri") not in intents:
        return False
    for uri in intents[intents.index(intent["uri"]) + 1:][:_EVIDENCE_INTENTS]:
        if _token((load_record(stores, uri).get("expect") or {}).get("observed")) == observed \
                and load_record(stores, record_uri(uri)).get("state") == "applied":
            return True
    return False


def judge_by_state(current: str | None, landed: Iterable[str] = ()) -> Callable[[dict[str, Any]], str | None]:
    """A judge from evidence that does not move: the state now, and ``landed``, the states known to have been
    reached since (the ``after`` versions of the service's own audit log; the state later records of ours started
    from). ``applied`` when the intent's result is the state now or among those; ``abandoned`` when the state is
    still the one it planned against and nothing shows it landed; ``unknown`` only when nothing tells."""
    reached = {t for t in (_token(v) for v in landed) if t}

    def judge(intent: dict[str, Any]) -> str | None:
        expect = intent.get("expect") or {}
        if "result" not in expect:
            return "unknown"
        now, before, after = (_token(v) for v in (current, expect.get("observed"), expect.get("result")))
        if after is not None and (now == after or after in reached):
            return "applied"
        if now == before:
            return "abandoned"
        return "unknown"

    return judge


def reached_states(records: Iterable[dict[str, Any]]) -> set[str]:
    """The states later actions of ours started from (the state each record's plan was made against): evidence
    that the state an earlier intent expected was reached, even if it has moved on since."""
    out = set()
    for record in records:
        expect = record.get("expect") if isinstance(record.get("expect"), dict) else {}
        value = expect.get("observed")
        if isinstance(value, str) and value:
            out.add(value.strip('"'))
    return out


def _token(value: Any) -> str | None:
    return value.strip('"') if isinstance(value, str) else None


def begin_service_change(target: Target, plan: Plan, *, tenant: str, scope: str, now: datetime | None,
                         actor: str | None, runbook: str | None, before: Any, after: Any,
                         expect: dict[str, Any], root: str | None = None,
                         **extra: Any) -> tuple[str, dict[str, Any]]:
    """Write the intent of a change the service is about to apply; raises (and nothing is changed) if it cannot."""
    now = now or datetime.now(UTC)
    with TargetStores(target) as st:
        return begin(st, target, plan, tenant=tenant, scope=scope, now=now, actor=actor, runbook=runbook,
                     before=before, after=after, expect=expect, root=root, **extra)


def place_for_service_change(target: Target, tenant: str, scope: str, current: str | None, *,
                             local_dir: str | os.PathLike[str] | None = None, landed: Iterable[str] = (),
                             only: str | None = None) -> Place:
    """Where the audit objects of a change made through the service alone (a config or rules revert) go, with the
    intents a crash left there settled (``current``: the state the service reports, see :func:`settle_service`).

    The registry when one is configured and can be read; else the local folder (:func:`local_root`), with the
    reason. A configured registry that cannot be read is not a reason to refuse a change that does not touch it:
    the record goes to the local folder and the summary says so (the service's own audit log has the change too).
    Raises BadInput, before anything is changed, when neither place can be used.
    """
    if target.has_registry:
        root = target.audit_root()  # a template that cannot hold audit records is a configuration error: refuse
        try:
            settle_service(target, tenant, scope, current, root=root, landed=landed, only=only)
            try:
                fallback: str | None = local_root(target, local_dir)
            except BadInput:  # no usable local folder: a refused registry write then refuses the change
                fallback = None
            return Place(root, fallback=fallback)
        except ChecksError as exc:
            place = Place(local_root(target, local_dir), True, f"the registry {root}/audit/ could not be read: "
                          f"{_one_line(exc)}")
    else:
        place = Place(local_root(target, local_dir), True,
                      "no registry is configured: RECSYS_ARTIFACT_MANIFEST_TEMPLATE is not set")
    try:
        settle_service(target, tenant, scope, current, root=place.root, landed=landed, only=only)
    except ChecksError as exc:
        raise BadInput(f"the local audit folder {place.root.removeprefix('file://')} cannot be used "
                       f"({_one_line(exc)}), and {place.why}; nothing was changed: set {AUDIT_DIR_VARIABLE} to a "
                       "writable folder") from None
    return place


def begin_at(place: Place, target: Target, plan: Plan, *, tenant: str, scope: str, now: datetime | None,
             actor: str | None, runbook: str | None, before: Any, after: Any, current: str | None,
             expect: dict[str, Any]) -> tuple[str, dict[str, Any], Place]:
    """Write the intent of a service change at ``place``; when that is the registry and it refuses the write (read
    access only, a store gone since it was read), write it to the local folder instead. Returns the intent's URI,
    its document and the place it went to; raises (nothing changed) when it could not be written anywhere."""
    extra = {"recorded_locally_because": place.why} if place.local else {}
    try:
        uri, doc = begin_service_change(target, plan, tenant=tenant, scope=scope, now=now, actor=actor,
                                        runbook=runbook, before=before, after=after, expect=expect, root=place.root,
                                        **extra)
        return uri, doc, place
    except Conflict:
        raise
    except ChecksError as exc:
        if place.local or place.fallback is None:
            raise BadInput(f"our audit record could not be written to {place.root}/audit/ ({_one_line(exc)}); "
                           f"nothing was changed: set {AUDIT_DIR_VARIABLE} to a writable folder") from None
        refused = _one_line(exc)
        fallback = Place(place.fallback, True, f"the registry {place.root}/audit/ could not be written: {refused}")
    try:
        settle_service(target, tenant, scope, current, root=fallback.root)
        uri, doc = begin_service_change(target, plan, tenant=tenant, scope=scope, now=now, actor=actor,
                                        runbook=runbook, before=before, after=after, expect=expect,
                                        root=fallback.root, recorded_locally_because=fallback.why)
    except Conflict:
        raise
    except ChecksError as local_exc:
        raise BadInput(f"our audit record could be written neither to {place.root}/audit/ ({refused}) nor "
                       f"to the local folder {fallback.root.removeprefix('file://')} ({_one_line(local_exc)}); "
                       f"nothing was changed: set {AUDIT_DIR_VARIABLE} to a writable folder") from None
    return uri, doc, fallback


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def finish_service_change(target: Target, intent_uri: str, intent: dict[str, Any], *, request_id: str | None,
                          state: str = "applied", **updates: Any) -> tuple[str | None, str | None]:
    """Complete the intent of a change the service has applied (and audited itself).

    Returns ``(uri, None)``, or ``(None, problem)`` when the record could not be written: the change happened, the
    service's audit log has it and the next action on this scope completes the intent, so the failure is
    reported, not raised.
    """
    try:
        with TargetStores(target) as st:
            return complete(st, intent_uri, intent, state=state, service_request_id=request_id, **updates), None
    except ChecksError as exc:
        return None, (f"our audit record {record_uri(intent_uri)} could not be written ({exc}); its intent "
                      f"{intent_uri} stands, the next run completes it, and the service's audit log has the change "
                      f"(request id {request_id})")


def may_have_happened(exc: Exception) -> bool:
    """Whether a service call that raised ``exc`` may still have changed something (then its intent stays)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status == 0 or status >= 500
    return bool(getattr(exc, "sent", True))


def settle_service(target: Target, tenant: str, scope: str, current: str | None, *,
                   root: str | None = None, landed: Iterable[str] = (), only: str | None = None,
                   judge: Callable[[dict[str, Any]], str | None] | None = None) -> list[str]:
    """Settle the intents left on a scope whose state the service reports as ``current`` (None: unknowable);
    ``landed``: the document versions the service's own audit log shows were written; ``only``: the action prefix
    of the intents that state judges (``rules.``, ``cache.``)."""
    with TargetStores(target) as st:
        return settle(st, target, tenant, scope, judge or judge_by_state(current, landed), root=root, only=only)


def settle_manifest(target: Target, tenant: str, surface: str) -> list[str]:
    """Settle the manifest rollbacks a crash left on a surface, judged by the manifest as it is now (a later
    action on the surface, such as the cache invalidation that finishes an interrupted fix, calls it)."""

    with TargetStores(target) as st:
        try:
            _, etag = st.get(target.manifest_uri(tenant, surface))
        except NotFound:
            etag = None
        except _Error:
            return []  # the manifest cannot be read: nothing to judge with; the next rollback settles
        return settle(st, target, tenant, surface, judge_by_state(etag), only="manifest.")


