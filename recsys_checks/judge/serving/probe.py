"""Recommendation probe: ask the service for recommendations and say why they are what they are.

:func:`check_recommendations` classifies one request: items returned, or empty with the cause named (weights,
rules, manifest, blob, artifact), or an HTTP problem (incompatible artifact, store unreachable, unknown tenant).
The registry side comes from an injected reader (default :func:`recsys_checks.judge.registry.published.read_manifest_state`).
"""

from __future__ import annotations

import time
from typing import Any

from recsys_checks.core.errors import ChecksError, ServiceProblem, Unreachable
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.invariants import hidden_share
from recsys_checks.judge.names import registry_hint, unknown_name
from recsys_checks.judge.registry.artifact import short_version
from recsys_checks.judge.registry.published import ManifestReader, ManifestState, read_manifest_state
from recsys_checks.judge.serving.blockrules import active_blocks
from recsys_checks.judge.serving.health import FAILING_STATUSES, dependency_checks
from recsys_checks.reach.service import ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment

DEFAULT_USER = "runbook-probe"
_PARTIAL = ("SIGNAL_PARTIAL", "TAG_LOOKUP_FAILED")
_FILTERS = ("CONSTRAINTS_FILTERED", "CANDIDATES_INCLUDE_EMPTY", "CANDIDATES_INCLUDE_FILTERED")
# Causes that say the probe could not see what it looks at (the service, its answer, the registry or the rules from
# here): its result is marked ``unread``, never taken as a finding about the deployment.
# How long the probe waits before asking again when the service ranks with an older document than the current one.
DOCUMENT_SETTLE_SECONDS = 1.5
UNREAD_CAUSES = ("unreachable", "auth", "not_the_service", "bad_answer", "rules_unreadable", "unknown")
# Every cause the probe can name (``data["cause"]`` of a failing result): the runbooks that pass the probe's cause on
# declare each in their decision table (tests/runbooks/test_decision_tables.py sends them every one).
CAUSES = ("bad_answer", "artifact_incompatible", "not_the_service", "dependency_failed", "service_error",
          "store_unreachable", "unknown_tenant", "unknown_surface", "auth", "bad_request", "rules_unreadable",
          "rules_block_all", "short_answer", "unreachable", "config_weights", "manifest_missing", "no_popularity",
          "missing_blob", "empty_artifact", "artifact_invalid", "unknown", "request_filters", "document_cache_stale",
          "cache_stale")


def warning_codes(warnings: Any) -> list[str]:
    """The ``code`` of each warning the service returned."""
    return [str(w.get("code")) for w in warnings or [] if isinstance(w, dict)]


def _problem_result(p: ServiceProblem, tenant: str, surface: str, data: dict[str, Any], state: ManifestState | None,
                    target: Target, failing: list[str] | None = None) -> CheckResult:
    where = f"{tenant}/{surface}"
    data["problem"] = p.to_dict()
    data["exit_code"] = p.exit_code
    code = f"{p.status} {p.code}" if p.code else str(p.status)
    if state is not None:
        data["manifest"] = state.to_dict()
    if p.status < 400:
        data["cause"], data["runbook"] = "bad_answer", None
        summary = f"cannot classify {where}: {p}"
    elif p.status == 422 and p.code == "RECSYS_ARTIFACT_INCOMPATIBLE":
        seen = f"; the registry says: {state.detail}" if state is not None and state.detail else ""
        data["cause"], data["runbook"] = "artifact_incompatible", "rollback-manifest"
        summary = (f"service refuses the artifacts of {where} ({code}): the manifest or the blob it names is corrupt "
                   f"or does not match tenant/surface{seen}; roll the manifest back to a valid version "
                   f"(recsys-checks manifest history --tenant {tenant} --surface {surface})")
    elif p.status >= 500 and p.code is None:
        data["cause"], data["runbook"] = "not_the_service", None
        summary = (f"{where}: {code} answer that is not the service's (no problem+json): {p.detail}; check that "
                   "RECSYS_BASE_URL points at recsys-service and not at a proxy or another application")
    elif p.status >= 500 and failing and not any(_is_store(name) for name in failing):
        data["cause"], data["runbook"] = "dependency_failed", "service-not-ready"
        data["failing_dependencies"] = failing
        summary = (f"service fails {where} ({code}: {p.detail}) and reports failing dependencies: "
                   f"{', '.join(failing)}; fix them (service-not-ready runbook)")
    elif p.status >= 500 and state is not None and state.state == "ok":
        data["cause"], data["runbook"] = "service_error", None
        if failing:
            data["failing_dependencies"] = failing
        summary = (f"service fails {where} ({code}: {p.detail}) although the artifacts it reads are there and valid "
                   f"from here ({state.detail}): the fault is in the service or in what it was given, not the store; "
                   f"look at the tenant's config and rules (`recsys-checks config show --tenant {tenant}`) and at "
                   f"the service's log for request {p.request_id or data.get('request_id') or '?'}")
    elif p.status >= 500 and state is not None and state.state == "invalid" and state.uri:
        # The service is fine; the blob it must read is not (a directory, a FIFO, a truncated file): roll it back.
        data["cause"], data["runbook"], data["broken_kind"] = "artifact_invalid", "rollback-manifest", "popularity"
        summary = (f"service fails {where} ({code}: {p.detail}) because the popularity artifact it serves from cannot "
                   f"be read: {state.detail}; roll the popularity kind back (recsys-checks manifest history --tenant "
                   f"{tenant} --surface {surface})")
    elif p.status >= 500:
        seen = f"; from here the registry says: {state.detail}" if state is not None and state.detail else ""
        if failing:
            seen += f"; the service reports failing: {', '.join(failing)}"
            data["failing_dependencies"] = failing
        data["cause"], data["runbook"] = "store_unreachable", "service-not-ready"
        summary = (f"service cannot read the artifact store for {where} ({code}: {p.detail}): the store is "
                   f"unreachable, denies access or the object is too large{seen}; check the store and the "
                   "service's store credentials")
    elif p.status == 404 and p.code in ("RECSYS_TENANT_NOT_FOUND", None):
        data["cause"], data["runbook"] = "unknown_tenant", None
        names = registry_hint(target, None, tenant) if target.has_registry else None
        summary = (f"service does not know tenant {tenant!r} ({code}){names or ''}: check the tenant id or create "
                   "the tenant")
    elif p.status in (401, 403):
        data["cause"], data["runbook"] = "auth", None
        summary = str(p)
    else:
        data["cause"], data["runbook"] = "bad_request", None
        summary = f"service rejected the probe request for {where} ({code}): {p.detail}"
    return CheckResult("recs.probe", "fail", summary, data, state.etag if state else None, target.base_url)


def _is_store(dependency: str) -> bool:
    name = dependency.split(" ", 1)[0].lower()
    return any(word in name for word in ("store", "artifact", "s3", "bucket", "blob"))


def _failing_dependencies(c: ServiceClient) -> list[str]:
    """Names of the dependencies the service's detailed health reports failing (the admin database, the store...)."""

    try:
        answer = c.health_detailed()
    except ChecksError:
        return []
    return [f"{row['name']} ({row['detail'] or row['status']})" for row in dependency_checks(answer.body)
            if row["status"] in FAILING_STATUSES]


def _blocked_cause(c: ServiceClient, target: Target, tenant: str, surface: str,
                   state: ManifestState) -> tuple[str, str] | None:
    """(cause, summary) when the rules explain an empty answer, or cannot be read to rule that out; else ``None``."""
    if not target.api_key:
        return ("rules_unreadable", f"the rules of {tenant} cannot be read without RECSYS_API_KEY, so block rules "
                "that remove every candidate cannot be ruled out; set RECSYS_API_KEY and run the probe again, then "
                f"`recsys-checks rules show --tenant {tenant}`")
    try:
        rules, rules_version = c.get_doc(tenant, "rules")
    except ChecksError as exc:
        return ("rules_unreadable", f"the rules of {tenant} could not be read ({exc}), so block rules that remove "
                "every candidate cannot be ruled out; fix the access and run the probe again")
    blocks = active_blocks(rules if isinstance(rules, list) else [], surface)
    if not blocks:
        return None
    candidates = {i["item_id"] for i in state.items or []}
    blocked_ids = {i for r in blocks if r.get("target_type", "item") == "item" for i in r.get("item_ids") or []}
    other = [r for r in blocks if r.get("target_type", "item") != "item"]
    fix = "revert the rules (rollback-config-rules runbook)"
    if candidates and candidates <= blocked_ids:
        return ("rules_block_all", f"all {len(candidates)} candidates of {tenant}/{surface} are blocked by item "
                f"block rules in rules {short_version(rules_version)}; {fix}")
    if other:
        keys = ", ".join(sorted({f"{r.get('target_type')}:{r.get('target_key')}" for r in other})[:5])
        return ("rules_block_all", f"the popularity artifact has {len(candidates)} items but none was served: "
                f"{len(blocks)} active block rule(s) in rules {short_version(rules_version)} ({keys}) block every "
                f"candidate; {fix}")
    return None


def _short_answer(c: ServiceClient, target: Target, tenant: str, surface: str, served: int, k: int,
                  reader: ManifestReader, data: dict[str, Any]) -> CheckResult | None:
    """Fewer items than asked: a finding when the catalog (the artifact, less what rules hide) allows more."""
    state = reader(target, tenant, surface)
    data["manifest"] = state.to_dict()
    if state.state != "ok" or not state.items:
        return None  # what the registry says is judged by the manifest checks
    hidden = 0
    if served < min(k, len(state.items)):
        why = None if target.api_key else "RECSYS_API_KEY is not set"
        rules: Any = None
        if why is None:
            try:
                rules, _ = c.get_doc(tenant, "rules")
            except ChecksError as exc:
                why = str(exc)
        if why is not None:  # unknown is not healthy: say what could not be read
            data["cause"], data["runbook"] = "rules_unreadable", None
            return CheckResult("recs.probe", "fail", f"{tenant}/{surface}: {served} items served where the artifact "
                               f"has {len(state.items)}; whether the rules hide the rest cannot be told, the rules "
                               f"of {tenant} could not be read ({why})", data, state.etag, target.base_url)
        share = hidden_share(rules, state.items, surface)
        if share.uncounted:
            data["uncounted_rules"] = share.uncounted
            return None  # tag, brand or category blocks: what they hide is the service's to count
        hidden = share.hidden
    allowed = min(k, len(state.items) - hidden)
    data["allowed"] = allowed
    if served >= allowed:
        return None
    data["cause"], data["runbook"] = "short_answer", None
    return CheckResult("recs.probe", "fail", f"{tenant}/{surface}: {served} items served where {allowed} were asked "
                       f"for and available (popularity {short_version(state.version)} has {len(state.items)} items, "
                       f"{hidden} hidden by rules): the service is not serving what the manifest names; compare with "
                       f"`recsys-checks manifest status --tenant {tenant} --surface {surface}`", data, state.etag,
                       target.base_url)


def _stale_documents(c: ServiceClient, target: Target, tenant: str, data: dict[str, Any]) -> list[str]:
    """The documents (config, rules) whose version the service ranked with is not the current one: its cache of
    them is stale. Empty without an API key or when a document cannot be read (nothing is claimed then)."""
    if not target.api_key:
        return []
    stale = []
    for kind in ("config", "rules"):
        served = data.get(f"{kind}_version")
        try:
            _, current = c.get_doc(tenant, kind)
        except ChecksError:
            continue
        if served and current and str(served) != str(current):
            data[f"current_{kind}_version"] = current
            stale.append(kind)
    return stale


def _served_vs_current(data: dict[str, Any], kind: str) -> str:
    return f"{kind} {short_version(data.get(f'{kind}_version'))} served, {short_version(data.get(f'current_{kind}_version'))} current"


def check_recommendations(
    target: Target,
    tenant: str,
    surface: str,
    *,
    user_id: str = DEFAULT_USER,
    k: int = 10,
    manifest_reader: ManifestReader | None = None,
    client: ServiceClient | None = None,
) -> CheckResult:
    """Ask for ``k`` recommendations and classify the answer (see the module docstring).

    ``ok`` when items come back (``warn`` with a partial signal); ``fail`` with ``data["cause"]`` named otherwise,
    and ``unread`` set when the cause is that something could not be read (:data:`UNREAD_CAUSES`).
    """
    result = _probe(target, tenant, surface, user_id=user_id, k=k, manifest_reader=manifest_reader, client=client)
    if result.data.get("cause") in UNREAD_CAUSES:
        result.unread = result.summary
    return result


def _probe(target: Target, tenant: str, surface: str, *, user_id: str, k: int,
           manifest_reader: ManifestReader | None, client: ServiceClient | None) -> CheckResult:
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    reader = manifest_reader or read_manifest_state
    where = f"{tenant}/{surface}"
    body = ServiceClient.recommend_body(surface, user_id=user_id, k=k)
    data: dict[str, Any] = {"tenant": tenant, "surface": surface, "request": body}
    try:
        with given_or_new_client(target, client) as c:
            try:
                response = c.recommend(tenant, body)
            except ServiceProblem as p:
                state = reader(target, tenant, surface) if p.status in (422,) or p.status >= 500 else None
                failing = _failing_dependencies(c) if p.status >= 500 and p.code is not None else []
                return _problem_result(p, tenant, surface, data, state, target, failing)
            try:
                checked = c.validate(tenant, body)
                data["validate"] = {"warnings": warning_codes(checked.get("warnings")),
                                    "normalized_request": checked.get("normalized_request")}
            except ServiceProblem as p:
                data["validate"] = {"problem": p.to_dict()}
            return _classify(c, target, tenant, surface, response, data, reader, where, k)
    except Unreachable as exc:
        hung = _hung_on_artifact(exc, target, tenant, surface, reader, data)
        if hung is not None:
            return hung
        data["cause"], data["runbook"] = "unreachable", "service-not-ready"
        data["exit_code"] = exc.exit_code
        return CheckResult("recs.probe", "fail", str(exc), data, None, target.base_url)


def _hung_on_artifact(exc: Unreachable, target: Target, tenant: str, surface: str, reader: ManifestReader,
                      data: dict[str, Any]) -> CheckResult | None:
    """A request the service accepted and never answered while the popularity blob it must read is not a readable
    artifact (a FIFO hangs its reader; the registry is read without blocking): the artifact is the cause, rolled back
    by kind. ``None`` when the connection was never made, the registry cannot say, or the blob is readable."""
    if not exc.sent or not target.has_registry:
        return None
    try:
        state = reader(target, tenant, surface)
    except ChecksError:
        return None
    if state.state != "invalid" or not state.uri:
        return None
    data["manifest"] = state.to_dict()
    data["cause"], data["runbook"], data["broken_kind"] = "artifact_invalid", "rollback-manifest", "popularity"
    return CheckResult("recs.probe", "fail", f"service gives no answer for {tenant}/{surface} ({exc}) and the "
                       f"popularity artifact it serves from cannot be read: {state.detail}; roll the popularity kind "
                       f"back (recsys-checks manifest history --tenant {tenant} --surface {surface})", data,
                       state.etag, target.base_url)


def _classify(c: ServiceClient, target: Target, tenant: str, surface: str, response: dict[str, Any],
              data: dict[str, Any], reader: ManifestReader, where: str, k: int, *, again: bool = True) -> CheckResult:
    items = response.get("items") or []
    meta = response.get("meta") or {}
    warnings = response.get("warnings") or []
    codes = warning_codes(warnings)
    config_version, rules_version = meta.get("config_version"), meta.get("rules_version")
    data.update({
        "items": [{"rank": i.get("rank"), "item_id": i.get("item_id"), "score": i.get("score")} for i in items],
        "config_version": config_version, "rules_version": rules_version, "warnings": warnings,
        "request_id": meta.get("request_id"), "segment": meta.get("segment"),
    })
    versions = f"config {short_version(config_version)}, rules {short_version(rules_version)}"
    if items and len(items) < k:
        short = _short_answer(c, target, tenant, surface, len(items), k, reader, data)
        if short is not None:
            return short
    if items:
        partial = [code for code in codes if code in _PARTIAL]
        data["cause"], data["runbook"] = None, None
        if partial:
            return CheckResult("recs.probe", "warn", f"{where}: {len(items)} items but with {', '.join(partial)} "
                               f"({versions})", data, None, target.base_url)
        return CheckResult("recs.probe", "ok", f"{where}: {len(items)} items ({versions})", data, None,
                           target.base_url)

    if "SIGNAL_UNAVAILABLE" in codes:
        data["cause"], data["runbook"] = "config_weights", "rollback-config-rules"
        return CheckResult("recs.probe", "fail", f"{where} is empty: no signal (SIGNAL_UNAVAILABLE) — the weights in "
                           f"config {short_version(config_version)} leave no usable signal; revert the config "
                           f"(recsys-checks config history --tenant {tenant})", data, None, target.base_url)

    state = reader(target, tenant, surface)
    data["manifest"] = state.to_dict()
    fixes = {
        "missing": ("manifest_missing", "stale-manifest",
                    "the surface was never published or its manifest is gone; publish it or restore the manifest"),
        "no_popularity": ("no_popularity", "rollback-manifest",
                          "roll the manifest back to a version that names a popularity artifact"),
        "missing_blob": ("missing_blob", "rollback-manifest",
                         f"roll back to a version whose blob exists (recsys-checks manifest history --tenant {tenant} "
                         f"--surface {surface})"),
        "empty": ("empty_artifact", "rollback-manifest",
                  f"roll back to the previous popularity version (recsys-checks manifest rollback --tenant {tenant} "
                  f"--surface {surface} --kind popularity --previous)"),
        "invalid": ("artifact_invalid", "rollback-manifest", "roll the manifest back to a valid version"),
    }
    unknown = (unknown_name(target, tenant, surface, ask_service=False)
               if state.state == "missing" and target.has_registry else None)
    if unknown is not None:
        # The service knows the tenant (it answered), the registry has no such surface: a typo reads as one.
        data["cause"], data["runbook"], data["exit_code"] = unknown.cause, None, 2
        data["unknown"] = unknown.to_dict()
        return CheckResult("recs.probe", "fail", f"{where} is empty: {unknown.message}", data, None,
                           target.base_url)
    if state.state in fixes:
        cause, runbook, fix = fixes[state.state]
        data["cause"], data["runbook"] = cause, runbook
        return CheckResult("recs.probe", "fail", f"{where} is empty: {state.detail}; {fix}", data, state.etag,
                           target.base_url)
    if state.state == "unreachable":
        data["cause"], data["runbook"] = "unknown", None
        return CheckResult("recs.probe", "fail", f"{where} is empty and the registry cannot be read from here to say "
                           f"why: {state.detail}", data, None, target.base_url)

    blocked = _blocked_cause(c, target, tenant, surface, state)
    if blocked:
        data["cause"] = blocked[0]
        data["runbook"] = None if blocked[0] == "rules_unreadable" else "rollback-config-rules"
        return CheckResult("recs.probe", "fail", f"{where} is empty: {blocked[1]}", data, state.etag,
                           target.base_url)
    filters = [code for code in codes if code in _FILTERS]
    if filters:
        data["cause"], data["runbook"] = "request_filters", None
        return CheckResult("recs.probe", "fail", f"{where} is empty: the request's filters removed every candidate "
                           f"({', '.join(filters)})", data, state.etag, target.base_url)
    stale_docs = _stale_documents(c, target, tenant, data)
    if stale_docs and again:
        # A document written a moment ago is followed by its cache invalidation (a revert does both): ask once more
        # before calling the cache stale, so that a fix in flight is not taken for one a crash left unfinished.
        time.sleep(DOCUMENT_SETTLE_SECONDS)
        try:
            fresh = c.recommend(tenant, data["request"])
        except ServiceProblem:
            fresh = None
        if fresh is not None:
            return _classify(c, target, tenant, surface, fresh, data, reader, where, k, again=False)
    if stale_docs:
        kinds = " and ".join(stale_docs)
        data["cause"], data["runbook"], data["stale_documents"] = "document_cache_stale", "rollback-config-rules", \
            stale_docs
        return CheckResult("recs.probe", "fail", f"{where} is empty and the service ranks with an older {kinds} than "
                           f"the current one ({', '.join(_served_vs_current(data, k) for k in stale_docs)}): its "
                           f"{kinds} cache is stale (a change without its cache invalidation); invalidate it "
                           f"(recsys-checks cache invalidate --tenant {tenant} --targets {','.join(stale_docs)})",
                           data, state.etag, target.base_url)
    data["cause"], data["runbook"] = "cache_stale", "stale-manifest"
    return CheckResult(
        "recs.probe", "fail",
        f"{where} is empty although the manifest names popularity {short_version(state.version)} with "
        f"{len(state.items or [])} items: the service is probably serving a cached older artifact; invalidate the "
        f"popularity cache (recsys-checks cache invalidate --tenant {tenant} --targets popularity --surface "
        f"{surface})", data, state.etag, target.base_url,
    )
