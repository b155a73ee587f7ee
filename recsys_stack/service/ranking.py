"""Scoring and ordering: popularity and co-occurrence signals, candidate filters, constraints and rules.

score = w_pop * popularity count + w_cooc * (sum of the co-occurrence counts from the request's anchors), plus the
boost of every matching boost rule. Pinned items come first (in rule priority order), then score descending, ties
by item_id; ranks are 1..n.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .documents import Rule
from .recommend_request import RecommendRequest

Catalog = Mapping[str, Mapping[str, Any]]


@dataclass
class Ranking:
    items: list[dict[str, Any]]
    warnings: list[dict[str, str]] = field(default_factory=list)

    def warn(self, code: str, detail: str) -> None:
        self.warnings.append({"code": code, "detail": detail})


def wire_score(value: float) -> int | float:
    """Scores as the suite prints them: 42 rather than 42.0 for whole numbers."""
    return int(value) if float(value).is_integer() else round(value, 6)


def _matches(rule: Rule, item_id: str, catalog: Catalog | None) -> bool:
    if rule.target_type == "item":
        return item_id in rule.item_ids
    meta = catalog.get(item_id) if catalog is not None else None
    if meta is None:
        return False
    if rule.target_type == "tag":
        return rule.target_key in (meta.get("tags") or ())
    return meta.get(rule.target_type) == rule.target_key


def _tags(item_id: str, catalog: Catalog | None) -> list[str]:
    meta = catalog.get(item_id) if catalog is not None else None
    return list(meta.get("tags") or ()) if meta is not None else []


def rank(
    request: RecommendRequest,
    *,
    weights: Mapping[str, float],
    popularity: list[tuple[str, int]],
    cooc: Mapping[str, list[tuple[str, int]]] | None,
    rules: list[Rule],
    catalog: Catalog | None,
    now: datetime,
    k: int | None = None,
    cooc_missing: bool = False,
) -> Ranking:
    """Rank for one request; ``catalog`` None means item metadata is unavailable (TAG_LOOKUP_FAILED)."""
    result = Ranking([])
    limit = k or request.k
    w_pop, w_cooc, w_emb = (float(weights.get(name, 0.0)) for name in ("pop", "cooc", "emb"))
    use_pop = w_pop > 0
    use_cooc = w_cooc > 0 and bool(request.anchors)
    if not use_pop and not use_cooc:
        result.warn(
            "SIGNAL_UNAVAILABLE",
            f"no usable signal: weights pop={w_pop:g}, cooc={w_cooc:g}, emb={w_emb:g}"
            + ("" if request.anchors or w_cooc == 0 else " and no anchors for cooc")
            + "; check the tenant config's weights",
        )
        return result
    if w_emb > 0:
        result.warn("SIGNAL_PARTIAL", "the emb signal is not served by this deployment; its weight is ignored")
    if use_cooc and (cooc_missing or cooc is None):
        result.warn("SIGNAL_PARTIAL", "no cooc artifact is published for this surface; anchors were ignored")

    scores: dict[str, float] = {}
    if use_pop:
        for item_id, count in popularity:
            scores[item_id] = w_pop * count
    if use_cooc and cooc:
        for anchor in request.anchors:
            for item_id, count in cooc.get(anchor, ()):
                scores[item_id] = scores.get(item_id, 0.0) + w_cooc * count

    scores = _filter_candidates(request, scores, result)
    active = _active_rules(request, rules, catalog, now, result)
    blocked = _apply_block_and_boost(active, scores, catalog)
    scores = _filter_tags(request, scores, catalog, result)
    pinned = _pins(active, scores, catalog, blocked | set(request.exclude_ids))[:limit]
    if pinned:
        result.warn("RULE_PIN_INJECTED", "pinned by rules: " + ", ".join(pinned))

    ordered = pinned + [i for i, _ in sorted(scores.items(), key=lambda p: (-p[1], p[0])) if i not in set(pinned)]
    if catalog is not None and request.max_per_tag is not None:
        ordered = _cap_per_tag(ordered, pinned, request.max_per_tag, limit, catalog, result)

    result.items = [
        {"item_id": item_id, "rank": n, "score": wire_score(scores.get(item_id, 0.0))}
        for n, item_id in enumerate(ordered[:limit], start=1)
    ]
    return result


def _filter_candidates(request: RecommendRequest, scores: dict[str, float], result: Ranking) -> dict[str, float]:
    """Keep only ``include_ids`` (when given and not empty) and drop ``exclude_ids``."""
    if request.include_ids is not None:
        if not request.include_ids:
            result.warn("CANDIDATES_INCLUDE_EMPTY", "candidates.include_ids is empty; it was ignored")
        else:
            missing = [i for i in request.include_ids if i not in scores]
            scores = {i: scores[i] for i in request.include_ids if i in scores}
            if missing:
                result.warn(
                    "CANDIDATES_INCLUDE_FILTERED",
                    f"{len(missing)} of {len(request.include_ids)} include_ids have no signal and were dropped",
                )
    for item_id in set(request.exclude_ids):
        scores.pop(item_id, None)
    return scores


def _active_rules(
    request: RecommendRequest, rules: list[Rule], catalog: Catalog | None, now: datetime, result: Ranking
) -> list[Rule]:
    """The rules in force for the request, highest priority first; without a catalog only item rules apply."""
    active = sorted(
        (r for r in rules if r.active(request.surface, request.segment, now)), key=lambda r: (-r.priority, r.index)
    )
    needs_catalog = (
        any(r.target_type != "item" for r in active)
        or request.required_tags
        or request.forbidden_tags
        or request.max_per_tag is not None
    )
    if needs_catalog and catalog is None:
        result.warn(
            "TAG_LOOKUP_FAILED",
            "item metadata is unavailable; tag, brand and category rules and constraints were skipped",
        )
        active = [r for r in active if r.target_type == "item"]
    return active


def _apply_block_and_boost(active: list[Rule], scores: dict[str, float], catalog: Catalog | None) -> set[str]:
    """Drop the items that block rules name and add every matching boost, in place; returns the blocked items."""
    blocked = {i for r in active if r.action == "block" for i in _targets(r, scores, catalog)}
    for item_id in blocked:
        scores.pop(item_id, None)
    for rule in active:
        if rule.action == "boost":
            for item_id in scores:
                if _matches(rule, item_id, catalog):
                    scores[item_id] += rule.boost_value
    return blocked


def _filter_tags(
    request: RecommendRequest, scores: dict[str, float], catalog: Catalog | None, result: Ranking
) -> dict[str, float]:
    """Keep the items that have every required tag and no forbidden one (when the catalog is available)."""
    if catalog is None or not (request.required_tags or request.forbidden_tags):
        return scores
    required, forbidden = set(request.required_tags), set(request.forbidden_tags)
    before = len(scores)
    scores = {
        i: s
        for i, s in scores.items()
        if required.issubset(_tags(i, catalog)) and not forbidden.intersection(_tags(i, catalog))
    }
    if len(scores) < before:
        result.warn("CONSTRAINTS_FILTERED", f"{before - len(scores)} item(s) removed by required/forbidden tags")
    return scores


def _pins(active: list[Rule], scores: Mapping[str, float], catalog: Catalog | None, barred: set[str]) -> list[str]:
    """Items the pin rules put first, in rule priority order, at most ``max_pins`` a rule; never a ``barred`` one."""
    pinned: list[str] = []
    for rule in active:
        if rule.action != "pin":
            continue
        added = 0
        for item_id in _targets(rule, scores, catalog):
            if item_id in barred or item_id in pinned:
                continue
            if rule.max_pins is not None and added >= rule.max_pins:
                break
            pinned.append(item_id)
            added += 1
    return pinned


def _cap_per_tag(
    ordered: list[str], pinned: list[str], max_per_tag: int, limit: int, catalog: Catalog, result: Ranking
) -> list[str]:
    """The first ``limit`` items of ``ordered`` with at most ``max_per_tag`` unpinned items per tag."""
    per_tag: dict[str, int] = defaultdict(int)
    kept, dropped = [], 0
    for item_id in ordered:
        tags = _tags(item_id, catalog)
        if item_id not in pinned and any(per_tag[t] >= max_per_tag for t in tags):
            dropped += 1
            continue
        for tag in tags:
            per_tag[tag] += 1
        kept.append(item_id)
        if len(kept) >= limit:
            break
    if dropped:
        result.warn("CONSTRAINTS_FILTERED", f"{dropped} item(s) removed by max_per_tag={max_per_tag}")
    return kept


def _targets(rule: Rule, scores: Mapping[str, float], catalog: Catalog | None) -> list[str]:
    """Items a rule names: its item_ids in order, or the catalog items with the tag/brand/category, best first."""
    if rule.target_type == "item":
        return list(rule.item_ids)
    if catalog is None:
        return []
    found = [i for i in catalog if _matches(rule, i, catalog)]
    return sorted(found, key=lambda i: (-scores.get(i, 0.0), i))
