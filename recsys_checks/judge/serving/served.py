"""Served vs published: does the service serve what the current manifest's popularity artifact says?

:func:`check_served_vs_published` compares what the service ranks with the manifest's popularity artifact, and
when they differ finds the older published version that explains the served list (a stale service cache) or says
that the manifest itself is old (a stale pipeline). The registry side comes from injected readers (defaults in
:mod:`recsys_checks.judge.registry.published`) so that both halves can be tested apart.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core.errors import ChecksError, ServiceProblem, Unreachable
from recsys_checks.core.results import CheckResult
from recsys_checks.core.timefmt import age_text, parse_time
from recsys_checks.judge.invariants import hidden_share
from recsys_checks.judge.registry.artifact import short_version
from recsys_checks.judge.registry.published import (
    HistoryReader,
    ManifestReader,
    ManifestState,
    PublishedVersion,
    read_manifest_state,
    read_published_versions,
)
from recsys_checks.judge.serving.probe import DEFAULT_USER
from recsys_checks.reach.service import ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment

_CHECK = "recs.served_vs_published"


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


def check_served_vs_published(
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
    data: dict[str, Any] = {"tenant": tenant, "surface": surface}
    body = ServiceClient.recommend_body(surface, user_id=user_id, k=k)
    try:
        with given_or_new_client(target, client) as c:
            response = c.recommend(tenant, body)
            rules = _rules(c, target, tenant, data)
    except Unreachable as exc:
        data["verdict"], data["exit_code"] = "unreachable", exc.exit_code
        return CheckResult(_CHECK, "fail", str(exc), data, None, target.base_url, unread=str(exc))
    except ServiceProblem as p:
        data["verdict"], data["problem"], data["exit_code"] = "service_error", p.to_dict(), p.exit_code
        return CheckResult(_CHECK, "fail", f"{where}: cannot compare, {p} (run recs probe for the cause)", data, None,
                           target.base_url)

    items = response.get("items") or []
    served = _unpinned(items, response.get("warnings") or [])
    data["served"] = [{"item_id": i.get("item_id"), "score": i.get("score")} for i in items]
    state = (manifest_reader or read_manifest_state)(target, tenant, surface)
    data["manifest"] = state.to_dict()
    if state.state != "ok" or not state.items:
        data["verdict"] = "manifest_unusable"
        summary = (f"{where}: cannot compare, the registry side is not usable: {state.detail or state.state} (run "
                   "recs probe / manifest status)")
        return CheckResult(_CHECK, "fail", summary, data, state.etag, target.base_url,
                           unread=summary if state.state == "unreachable" else None)
    if not served:
        data["verdict"] = "empty"
        return CheckResult(_CHECK, "fail", f"{where}: the service served no items while the manifest names "
                           f"popularity {short_version(state.version)} with {len(state.items)} items; run recs probe "
                           "for the cause", data, state.etag, target.base_url)

    # Items the rules hide are not served by design: they are neither "skipped" nor evidence of another version.
    hidden = hidden_share(rules, state.items, surface).hidden_ids if rules is not None else set()
    data["hidden_by_rules"] = len(hidden)
    current = explain(served, _visible(state.items, hidden))
    data["current_fit"] = asdict(current)
    best = None
    if not current.explains or current.skipped > 0:
        best = _best_older_version(target, tenant, surface, served, state.version, history_reader, data, rules)
    return _verdict(target, tenant, surface, state, current, best, data, max_age, now)


def _rules(c: ServiceClient, target: Target, tenant: str, data: dict[str, Any]) -> Any:
    """The tenant's rules when the key allows reading them, else ``None`` (the fit then counts blocked items as
    skipped, and says so)."""
    if not target.api_key:
        data["rules_read"] = "no RECSYS_API_KEY: items hidden by rules count as skipped"
        return None
    try:
        rules, _ = c.get_doc(tenant, "rules")
    except ChecksError as exc:
        data["rules_read"] = f"rules not read ({exc}): items hidden by rules count as skipped"
        return None
    data["rules_read"] = "ok"
    return rules


def _visible(items: list[dict[str, Any]], hidden: set[str]) -> list[dict[str, Any]]:
    return [i for i in items if str(i.get("item_id")) not in hidden] if hidden else items


def _best_older_version(target: Target, tenant: str, surface: str, served: list[tuple[str, float]],
                        current_version: str | None, history_reader: HistoryReader | None,
                        data: dict[str, Any], rules: Any = None) -> tuple[PublishedVersion, _Fit] | None:
    """The other published version that explains the served list best (fewest skipped items, then most plain)."""
    try:
        versions = (history_reader or read_published_versions)(target, tenant, surface)
    except ChecksError as exc:
        versions = []
        data["history_error"] = str(exc)
    best: tuple[PublishedVersion, _Fit] | None = None
    for pv in versions:
        if pv.version == current_version or not pv.items:
            continue
        hidden = hidden_share(rules, pv.items, surface).hidden_ids if rules is not None else set()
        fit = explain(served, _visible(pv.items, hidden))
        if fit.explains and (best is None or (fit.skipped, -fit.plain) < (best[1].skipped, -best[1].plain)):
            best = (pv, fit)
    data["candidates_checked"] = len(versions)
    return best


def _verdict(target: Target, tenant: str, surface: str, state: ManifestState, current: _Fit,
             best: tuple[PublishedVersion, _Fit] | None, data: dict[str, Any], max_age: timedelta,
             now: datetime) -> CheckResult:
    """Cache stale (an older version explains the list better), unexplained, pipeline stale or consistent."""
    where = f"{tenant}/{surface}"
    older_fits_better = best is not None and (not current.explains or best[1].skipped < current.skipped)
    if older_fits_better and best is not None:
        pv = best[0]
        data["verdict"], data["served_version"] = "cache_stale", pv.version
        data["runbook"] = "stale-manifest"
        return CheckResult(
            _CHECK, "fail",
            f"service cache stale: serving {short_version(pv.version)} while manifest names "
            f"{short_version(state.version)} for {where}; invalidate popularity cache (recsys-checks cache "
            f"invalidate --tenant {tenant} --targets popularity --surface {surface} --execute)", data, state.etag,
            target.base_url,
        )
    if not current.explains:
        data["verdict"] = "unexplained"
        return CheckResult(
            _CHECK, "warn",
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
            _CHECK, "warn",
            f"pipeline stale: the service serves what the manifest names ({short_version(state.version)}), but the "
            f"manifest for {where} was last updated {age_text(age)} ago (> {age_text(max_age)}); see why the "
            "pipeline has not published", data, state.etag, target.base_url,
        )
    data["verdict"] = "consistent"
    return CheckResult(_CHECK, "ok", f"{where}: the service serves popularity {short_version(state.version)}, as the "
                       "manifest names", data, state.etag, target.base_url)
