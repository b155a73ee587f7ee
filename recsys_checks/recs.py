"""Recommendation probes: ask the service for recommendations and say why they are what they are.

``probe`` classifies one request: items returned, or empty with the cause named (weights, rules, manifest, blob,
artifact), or an HTTP problem (incompatible artifact, store unreachable, unknown tenant). ``served_vs_published``
compares what the service ranks with what the current manifest's popularity artifact says, and when they differ
finds the older published version that explains the served list (a stale service cache) or says that the manifest
itself is old (a stale pipeline).

The manifest side comes from the registry through an injected reader so that both halves can be tested apart; the
default readers use :mod:`recsys_checks.manifest` and :mod:`recsys_checks.store`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import jsonio
from .artifact import version_from_uri
from .config import Target, safe_segment
from .errors import ChecksError, Unreachable
from .results import CheckResult
from .service import ServiceClient, ServiceProblem, using
from .timefmt import age_text, parse_time

DEFAULT_USER = "runbook-probe"
_PARTIAL = ("SIGNAL_PARTIAL", "TAG_LOOKUP_FAILED")
_FILTERS = ("CONSTRAINTS_FILTERED", "CANDIDATES_INCLUDE_EMPTY", "CANDIDATES_INCLUDE_FILTERED")


@dataclass
class ManifestState:
    """What the registry says for one surface's popularity, as far as serving is concerned.

    ``state``: ``ok`` | ``missing`` (no manifest) | ``no_popularity`` | ``missing_blob`` | ``invalid`` (manifest or
    blob unreadable, wrong type, hash mismatch) | ``empty`` (valid artifact, no items) | ``unreachable``.
    ``items`` are the popularity artifact's ``{item_id, count}`` in artifact order when it was read.
    """

    state: str
    detail: str = ""
    manifest_uri: str | None = None
    etag: str | None = None
    updated_at: str | None = None
    uri: str | None = None
    version: str | None = None
    items: list[dict[str, Any]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["item_count"] = None if self.items is None else len(self.items)
        d.pop("items")
        return d


@dataclass
class PublishedVersion:
    """One published popularity version from the registry's records, with its items when they could be read."""

    version: str
    uri: str
    window_end: str | None = None
    built_at: str | None = None
    items: list[dict[str, Any]] | None = field(default=None, repr=False)


ManifestReader = Callable[[Target, str, str], ManifestState]
HistoryReader = Callable[[Target, str, str], list[PublishedVersion]]


def _artifact_items(raw: bytes) -> list[dict[str, Any]] | None:
    try:
        doc = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    return [i for i in items if isinstance(i, dict) and "item_id" in i]


def read_manifest_state(target: Target, tenant: str, surface: str) -> ManifestState:
    """Default manifest reader: manifest → popularity URI → blob, through the registry and the object store."""
    from .store import Stores

    with Stores(target) as stores:
        return _manifest_state(target, tenant, surface, stores)


def _manifest_state(target: Target, tenant: str, surface: str, stores: Any) -> ManifestState:
    from . import manifest as registry

    uri = target.manifest_uri(tenant, surface)
    try:
        if not stores.exists(uri):
            return ManifestState("missing", f"no manifest at {uri}", manifest_uri=uri)
        man, etag = registry.read_current(target, tenant, surface, stores=stores)
    except Unreachable as exc:
        return ManifestState("unreachable", str(exc), manifest_uri=uri)
    except ChecksError as exc:
        return ManifestState("invalid", f"manifest at {uri} is not valid: {exc}", manifest_uri=uri)
    state = ManifestState("ok", manifest_uri=uri, etag=etag, updated_at=getattr(man, "updated_at", None))
    pop = (getattr(man, "current", None) or {}).get("popularity")
    if not pop:
        state.state, state.detail = "no_popularity", f"manifest at {uri} has no current.popularity"
        return state
    state.uri, state.version = pop, version_from_uri(pop)
    try:
        if not stores.exists(pop):
            state.state, state.detail = "missing_blob", f"popularity blob {pop} does not exist"
            return state
        raw, _ = stores.get(pop)
        items = _artifact_items(raw)
        if items == []:
            state.state, state.detail, state.items = "empty", f"popularity artifact {pop} has no items", []
            return state
        checked = registry.validate_artifact(target, pop, tenant=tenant, surface=surface, kind="popularity",
                                             stores=stores)
    except Unreachable as exc:
        state.state, state.detail = "unreachable", str(exc)
        return state
    except ChecksError as exc:
        state.state, state.detail = "invalid", f"popularity artifact {pop} is not valid: {exc}"
        return state
    if checked.status == "fail" or items is None:
        state.state, state.detail = "invalid", f"popularity artifact {pop} is not valid: {checked.summary}"
        return state
    state.items = items
    state.detail = f"popularity {state.version} with {len(items)} items"
    return state


def read_published_versions(target: Target, tenant: str, surface: str, *, limit: int = 10) -> list[PublishedVersion]:
    """Default history reader: the newest ``limit`` popularity records with their items."""
    from . import manifest as registry
    from .store import Stores

    out: list[PublishedVersion] = []
    with Stores(target) as stores:
        records = registry.history(target, tenant, surface, kind="popularity", stores=stores)[:limit]
        for rec in records:
            items: list[dict[str, Any]] | None = None
            try:
                items = _artifact_items(stores.get(rec.uri)[0])
            except ChecksError:
                items = None
            out.append(
                PublishedVersion(
                    version=rec.version, uri=rec.uri, window_end=_text(rec.window_end), built_at=_text(rec.built_at),
                    items=items,
                )
            )
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def _codes(warnings: Any) -> list[str]:
    return [str(w.get("code")) for w in warnings or [] if isinstance(w, dict)]


def _short(version: str | None) -> str:
    return (version or "?")[:12]


# --- rules: which candidates are blocked -----------------------------------------------------------------------


def _rule_active(rule: dict[str, Any], surface: str, now: datetime) -> bool:
    if rule.get("enabled") is False:
        return False
    if rule.get("surface") not in (None, "", surface):
        return False
    if rule.get("segment") not in (None, "", "default"):
        return False
    start, end = parse_time(rule.get("valid_from")), parse_time(rule.get("valid_until"))
    return (start is None or start <= now) and (end is None or now < end)


def active_blocks(rules: Any, surface: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The enabled, in-window block rules that apply to ``surface``."""
    now = now or datetime.now(UTC)
    return [
        r for r in rules or []
        if isinstance(r, dict) and r.get("action") == "block" and _rule_active(r, surface, now)
    ]


# --- probe -----------------------------------------------------------------------------------------------------


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
        summary = f"service does not know tenant {tenant!r} ({code}): check the tenant id or create the tenant"
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
    from .health import _BAD, dependency_checks

    try:
        answer = c.health_detailed()
    except ChecksError:
        return []
    return [f"{row['name']} ({row['detail'] or row['status']})" for row in dependency_checks(answer.body)
            if row["status"] in _BAD]


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
                f"block rules in rules {_short(rules_version)}; {fix}")
    if other:
        keys = ", ".join(sorted({f"{r.get('target_type')}:{r.get('target_key')}" for r in other})[:5])
        return ("rules_block_all", f"the popularity artifact has {len(candidates)} items but none was served: "
                f"{len(blocks)} active block rule(s) in rules {_short(rules_version)} ({keys}) block every "
                f"candidate; {fix}")
    return None


def probe(
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

    ``ok`` when items come back (``warn`` with a partial signal); ``fail`` with ``data["cause"]`` named otherwise.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    reader = manifest_reader or read_manifest_state
    where = f"{tenant}/{surface}"
    body = ServiceClient.recommend_body(surface, user_id=user_id, k=k)
    data: dict[str, Any] = {"tenant": tenant, "surface": surface, "request": body}
    try:
        with using(target, client) as c:
            try:
                response = c.recommend(tenant, body)
            except ServiceProblem as p:
                state = reader(target, tenant, surface) if p.status in (422,) or p.status >= 500 else None
                failing = _failing_dependencies(c) if p.status >= 500 and p.code is not None else []
                return _problem_result(p, tenant, surface, data, state, target, failing)
            try:
                checked = c.validate(tenant, body)
                data["validate"] = {"warnings": _codes(checked.get("warnings")),
                                    "normalized_request": checked.get("normalized_request")}
            except ServiceProblem as p:
                data["validate"] = {"problem": p.to_dict()}
            return _classify(c, target, tenant, surface, response, data, reader, where)
    except Unreachable as exc:
        data["cause"], data["runbook"] = "unreachable", "service-not-ready"
        data["exit_code"] = exc.exit_code
        return CheckResult("recs.probe", "fail", str(exc), data, None, target.base_url)


def _classify(c: ServiceClient, target: Target, tenant: str, surface: str, response: dict[str, Any],
              data: dict[str, Any], reader: ManifestReader, where: str) -> CheckResult:
    items = response.get("items") or []
    meta = response.get("meta") or {}
    warnings = response.get("warnings") or []
    codes = _codes(warnings)
    config_version, rules_version = meta.get("config_version"), meta.get("rules_version")
    data.update({
        "items": [{"rank": i.get("rank"), "item_id": i.get("item_id"), "score": i.get("score")} for i in items],
        "config_version": config_version, "rules_version": rules_version, "warnings": warnings,
        "request_id": meta.get("request_id"), "segment": meta.get("segment"),
    })
    versions = f"config {_short(config_version)}, rules {_short(rules_version)}"
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
                           f"config {_short(config_version)} leave no usable signal; revert the config "
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
    data["cause"], data["runbook"] = "cache_stale", "stale-manifest"
    return CheckResult(
        "recs.probe", "fail",
        f"{where} is empty although the manifest names popularity {_short(state.version)} with "
        f"{len(state.items or [])} items: the service is probably serving a cached older artifact; invalidate the "
        f"popularity cache (recsys-checks cache invalidate --tenant {tenant} --targets popularity --surface "
        f"{surface})", data, state.etag, target.base_url,
    )


# --- served vs published ---------------------------------------------------------------------------------------


def _mentioned(item_id: str, text: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(item_id) + r"(?![\w-])", text) is not None


def _unpinned(items: list[dict[str, Any]], warnings: list[Any]) -> list[tuple[str, float]]:
    pin_text = " ".join(json.dumps(w) for w in warnings if isinstance(w, dict) and w.get("code") == "RULE_PIN_INJECTED")
    out = []
    for item in items:
        item_id, score = str(item.get("item_id")), item.get("score")
        if pin_text and _mentioned(item_id, pin_text):
            continue
        if isinstance(score, int | float):
            out.append((item_id, float(score)))
    return out


@dataclass
class _Fit:
    explains: bool
    plain: int
    skipped: int
    reason: str


def explain(served: list[tuple[str, float]], items: list[dict[str, Any]]) -> _Fit:
    """Does this artifact explain the served (unpinned) list?

    Served popularity is ``weight × count``: the items whose score/count ratio is the common one ("plain" items,
    the rest being boosted) must be artifact items, at least half of the list, in artifact order. ``skipped`` counts
    artifact items ranked above the last plain item that were not served (blocked by rules, or another version).
    """
    counts = {str(i["item_id"]): i.get("count") for i in items}
    order = {str(i["item_id"]): n for n, i in enumerate(items)}
    if not served:
        return _Fit(False, 0, 0, "nothing served")
    missing = [i for i, _ in served if i not in counts]
    if missing:
        return _Fit(False, 0, 0, f"{len(missing)} served item(s) not in the artifact (e.g. {missing[0]})")
    ratios = [round(score / counts[i], 9) if isinstance(counts[i], int | float) and counts[i] else None
              for i, score in served]
    common = Counter(r for r in ratios if r is not None).most_common(1)
    if not common:
        return _Fit(False, 0, 0, "no served score matches an artifact count")
    plain = [i for (i, _), r in zip(served, ratios, strict=True) if r == common[0][0]]
    positions = [order[i] for i in plain]
    if positions != sorted(positions):
        return _Fit(False, len(plain), 0, "served order differs from the artifact's order")
    if 2 * len(plain) < len(served):
        return _Fit(False, len(plain), 0, "served scores are not proportional to the artifact's counts")
    served_ids = {i for i, _ in served}
    skipped = sum(1 for i in items[: positions[-1] + 1] if str(i["item_id"]) not in served_ids)
    return _Fit(True, len(plain), skipped, f"{len(plain)} of {len(served)} served items match in order")


def served_vs_published(
    target: Target,
    tenant: str,
    surface: str,
    *,
    k: int = 10,
    user_id: str = DEFAULT_USER,
    max_age: timedelta = timedelta(hours=26),
    now: datetime | None = None,
    manifest_reader: ManifestReader | None = None,
    history_reader: HistoryReader | None = None,
    client: ServiceClient | None = None,
) -> CheckResult:
    """What the service serves vs what the manifest publishes: consistent, service cache stale, or pipeline stale."""
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    now = now or datetime.now(UTC)
    where = f"{tenant}/{surface}"
    check = "recs.served_vs_published"
    data: dict[str, Any] = {"tenant": tenant, "surface": surface}
    body = ServiceClient.recommend_body(surface, user_id=user_id, k=k)
    try:
        with using(target, client) as c:
            response = c.recommend(tenant, body)
    except Unreachable as exc:
        data["verdict"], data["exit_code"] = "unreachable", exc.exit_code
        return CheckResult(check, "fail", str(exc), data, None, target.base_url)
    except ServiceProblem as p:
        data["verdict"], data["problem"], data["exit_code"] = "service_error", p.to_dict(), p.exit_code
        return CheckResult(check, "fail", f"{where}: cannot compare, {p} (run recs probe for the cause)", data, None,
                           target.base_url)

    items = response.get("items") or []
    served = _unpinned(items, response.get("warnings") or [])
    data["served"] = [{"item_id": i.get("item_id"), "score": i.get("score")} for i in items]
    state = (manifest_reader or read_manifest_state)(target, tenant, surface)
    data["manifest"] = state.to_dict()
    if state.state != "ok" or not state.items:
        data["verdict"] = "manifest_unusable"
        return CheckResult(check, "fail", f"{where}: cannot compare, the registry side is not usable: "
                           f"{state.detail or state.state} (run recs probe / manifest status)", data, state.etag,
                           target.base_url)
    if not served:
        data["verdict"] = "empty"
        return CheckResult(check, "fail", f"{where}: the service served no items while the manifest names "
                           f"popularity {_short(state.version)} with {len(state.items)} items; run recs probe for "
                           "the cause", data, state.etag, target.base_url)

    current = explain(served, state.items)
    data["current_fit"] = asdict(current)
    best: tuple[PublishedVersion, _Fit] | None = None
    if not current.explains or current.skipped > 0:
        try:
            versions = (history_reader or read_published_versions)(target, tenant, surface)
        except ChecksError as exc:
            versions = []
            data["history_error"] = str(exc)
        for pv in versions:
            if pv.version == state.version or not pv.items:
                continue
            fit = explain(served, pv.items)
            if fit.explains and (best is None or (fit.skipped, -fit.plain) < (best[1].skipped, -best[1].plain)):
                best = (pv, fit)
        data["candidates_checked"] = len(versions)
    older_fits_better = best is not None and (not current.explains or best[1].skipped < current.skipped)
    if older_fits_better and best is not None:
        pv = best[0]
        data["verdict"], data["served_version"] = "cache_stale", pv.version
        data["runbook"] = "stale-manifest"
        return CheckResult(
            check, "fail",
            f"service cache stale: serving {_short(pv.version)} while manifest names {_short(state.version)} for "
            f"{where}; invalidate popularity cache (recsys-checks cache invalidate --tenant {tenant} --targets "
            f"popularity --surface {surface} --execute)", data, state.etag, target.base_url,
        )
    if not current.explains:
        data["verdict"] = "unexplained"
        return CheckResult(
            check, "warn",
            f"{where}: the served list matches no published popularity version ({current.reason}); boosts, pins or "
            "weights may reorder it — compare by hand with recs probe and manifest history", data, state.etag,
            target.base_url,
        )
    data["served_version"] = state.version
    updated = parse_time(state.updated_at)
    age = (now - updated) if updated else None
    data["manifest_age_seconds"] = age.total_seconds() if age is not None else None
    if age is not None and age > max_age:
        data["verdict"], data["runbook"] = "pipeline_stale", "stale-artifacts"
        return CheckResult(
            check, "warn",
            f"pipeline stale: the service serves what the manifest names ({_short(state.version)}), but the manifest "
            f"for {where} was last updated {age_text(age)} ago (> {age_text(max_age)}); see why the pipeline has not "
            "published", data, state.etag, target.base_url,
        )
    data["verdict"] = "consistent"
    return CheckResult(check, "ok", f"{where}: the service serves popularity {_short(state.version)}, as the "
                       "manifest names", data, state.etag, target.base_url)
