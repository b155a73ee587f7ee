"""What the runbooks' pictures show, as data: pure functions from what a check read to what a picture draws.

Four pictures (drawn by :mod:`recsys_checks.runbooks.pictures`; the data is what the tests pin, not the pixels):

- :func:`versions_figure`: a surface's versions as a timeline: each version's data window as a bar, each publish and
  each repoint of the manifest as a mark, the current pointer and the freshness limit;
- :func:`freshness_figure`: the fleet's manifest ages as a histogram, the limit marked, the stale surfaces named;
- :func:`evaluation_figure`: each variant's primary metric with its 95 % confidence interval and the threshold the
  candidate must stay above, and the SRM split observed against expected;
- :func:`rules_figure`: the share of the catalog each active block rule hides, and the served items against the
  published ones.

Every time is UTC text (``...Z``); every figure is bounded (at most :data:`MAX_BARS` bars or names), so a picture of
a fleet or of a long history stays small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from recsys_checks.core.timefmt import format_z, parse_time
from recsys_checks.judge.serving.blockrules import active_blocks

__all__ = ["MAX_BARS", "Z95", "evaluation_figure", "freshness_figure", "rules_figure", "versions_figure",
           "wilson_interval"]

MAX_BARS = 30  # versions, rules or stale names a picture shows at most (the newest, the largest, the oldest)
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
# A manifest written within this long after its version was built is that publish's own swap; later, a repoint.
PUBLISH_SWAP = timedelta(minutes=10)


def _z(value: Any) -> str | None:
    dt = parse_time(value)
    return format_z(dt) if dt is not None else None


def versions_figure(records: Iterable[Mapping[str, Any]], *, tenant: str, surface: str,
                    current: Mapping[str, str] | None, updated_at: str | None, max_age: timedelta,
                    now: datetime) -> dict[str, Any]:
    """The timeline of one surface's versions (records as :meth:`VersionRecord.to_dict` gives them, any order).

    ``bars``: one per version (the newest :data:`MAX_BARS`), its data window ``start``..``end`` exactly as its
    record says, ``current`` when the manifest names its blob; ``marks``: each version's publish (its ``built_at``,
    unless the zero time of a staging build) and the manifest's last write, a ``repoint`` when no version of the
    ones it names was built just before it (a rollback or a re-run of an older day); ``limit``: the oldest
    acceptable write (``now - max_age``)."""
    pointed = set((current or {}).values())
    usable = [r for r in records if parse_time(r.get("window_start")) and parse_time(r.get("window_end"))]
    usable.sort(key=lambda r: (parse_time(r["window_end"]), str(r.get("built_at") or "")), reverse=True)
    shown = usable[:MAX_BARS]
    bars = [{"kind": str(r.get("kind")), "version": str(r.get("version") or "")[:12],
             "start": _z(r["window_start"]), "end": _z(r["window_end"]),
             "current": r.get("uri") in pointed} for r in shown]
    marks = []
    for r in shown:
        built = parse_time(r.get("built_at"))
        if built is not None and built.year > 1:
            marks.append({"at": format_z(built), "what": "publish", "version": str(r.get("version") or "")[:12]})
    written = parse_time(updated_at)
    if written is not None:
        builds = [parse_time(r.get("built_at")) for r in usable if r.get("uri") in pointed]
        own = any(b is not None and b.year > 1 and timedelta(0) <= written - b <= PUBLISH_SWAP for b in builds)
        marks.append({"at": format_z(written), "what": "publish" if own else "repoint", "version": "manifest"})
    marks.sort(key=lambda m: m["at"])
    return {"figure": "versions", "tenant": tenant, "surface": surface, "now": format_z(now),
            "limit": format_z(now - max_age), "max_age_seconds": int(max_age.total_seconds()),
            "updated_at": _z(updated_at), "bars": bars, "marks": marks,
            "versions_not_shown": len(usable) - len(shown)}


def with_before(after: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """``after`` with the picture of the same surface before a change beside it (a rollback's before and after)."""
    if before is None or before.get("figure") != "versions":
        return after
    return {**after, "before": {k: v for k, v in before.items() if k != "before"}}


def freshness_figure(rows: Iterable[Mapping[str, Any]], *, max_age_seconds: int,
                     bins: int = 12) -> dict[str, Any]:
    """A histogram of manifest ages, in hours, from the freshness rows (``recsys-checks freshness``'s rows, or a
    triage's surfaces): ``edges`` (hours, ``bins`` + 1 of them, the last one at least past the oldest age and the
    limit), ``counts`` (surfaces per bin, an age equal to an edge counted in the bin it starts), ``stale`` (the names
    of surfaces older than the limit, oldest first, at most :data:`MAX_BARS`), ``unaged`` (surfaces without an age:
    missing, unreadable: never counted as fresh)."""
    aged: list[tuple[float, str]] = []
    unaged = 0
    for row in rows:
        age = row.get("age_seconds")
        name = f"{row.get('tenant')}/{row.get('surface')}"
        if isinstance(age, (int, float)) and not isinstance(age, bool) and math.isfinite(age) and age >= 0:
            aged.append((age / 3600.0, name))
        else:
            unaged += 1
    limit_h = max_age_seconds / 3600.0
    top = max([a for a, _ in aged] + [limit_h * 1.25, 1.0])
    width = top / bins
    edges = [round(i * width, 6) for i in range(bins + 1)]
    counts = [0] * bins
    for age, _ in aged:
        counts[min(int(age // width), bins - 1)] += 1
    stale = sorted(((a, n) for a, n in aged if a > limit_h), reverse=True)
    return {"figure": "freshness", "unit": "hours", "limit_hours": limit_h, "edges": edges, "counts": counts,
            "surfaces": len(aged), "unaged": unaged, "stale": [n for _, n in stale[:MAX_BARS]],
            "stale_count": len(stale)}


def wilson_interval(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a rate ``successes / trials`` (``(0, 0)`` without trials); it stays in [0, 1]."""
    if trials <= 0:
        return 0.0, 0.0
    p = min(max(successes / trials, 0.0), 1.0)
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # Rounding can leave p itself a hair outside at 0 or 1; the interval always holds the observed rate.
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


_COUNT_OF = {"ctr": "clicks", "conversion_rate": "conversions"}


def evaluation_figure(variants: Iterable[Mapping[str, Any]], srm: Mapping[str, Any] | None, *,
                      metric: str, control: str | None, threshold: float) -> dict[str, Any]:
    """Each variant's ``metric`` (``ctr`` or ``conversion_rate``: a rate per exposure) with its 95 % Wilson interval,
    the line the candidate must stay above (control + ``threshold``, the suite's rule on the delta), and the SRM
    split (``srm["global"]`` of ``eval quality``): observed assignments against the counts the weights expect."""
    metric = metric.lower()
    rows = []
    for v in variants:
        n = v.get("exposures") or 0
        hits = v.get(_COUNT_OF.get(metric, ""), None)
        value = v.get(metric)
        low, high = wilson_interval(hits, n) if isinstance(hits, (int, float)) else (value, value)
        rows.append({"variant": str(v.get("variant")), "value": value, "low": low, "high": high, "exposures": n})
    base = next((r["value"] for r in rows if r["variant"] == control), None)
    line = base + threshold if isinstance(base, (int, float)) else None
    split = []
    glob = (srm or {}).get("global") or {}
    expected = glob.get("expected_counts") or {}
    for name, seen in sorted((glob.get("observed") or {}).items()):
        split.append({"variant": name, "observed": seen, "expected": expected.get(name)})
    return {"figure": "evaluation", "metric": metric, "control": control, "threshold": threshold,
            "must_stay_above": line, "variants": rows, "srm": split, "srm_p_value": glob.get("p_value"),
            "srm_detected": glob.get("detected")}


def rules_figure(rules: Any, catalog: Iterable[Mapping[str, Any]], served: Iterable[Mapping[str, Any]], *,
                 surface: str, now: datetime) -> dict[str, Any]:
    """What the active block rules of ``surface`` hide of the catalog (the popularity artifact's items), rule by rule
    (``hidden``: catalog items the rule names; a rule on tags, brands or categories is listed ``counted: False``:
    the artifact has no tags to count it with), the catalog hidden by all of them together, and the items the
    service served against the ones it could have (``servable``: the catalog less what the rules hide; ``served``;
    ``served_published``: served and in the catalog)."""
    ids = {str(i.get("item_id")) for i in catalog if isinstance(i, Mapping)}
    per_rule = []
    hidden_all: set[str] = set()
    for n, rule in enumerate(active_blocks(rules if isinstance(rules, list) else [], surface, now), 1):
        item_rule = rule.get("target_type", "item") == "item"
        named = {str(i) for i in rule.get("item_ids") or []} if item_rule else set()
        hidden_all |= named & ids
        label = rule.get("id") or rule.get("name") or f"rule {n}"
        target = "items" if item_rule else f"{rule.get('target_type')}:{rule.get('target_key')}"
        per_rule.append({"rule": str(label), "target": target, "hidden": len(named & ids), "counted": item_rule})
    per_rule.sort(key=lambda r: (-r["hidden"], r["rule"]))
    served_ids = [str(i.get("item_id")) for i in served if isinstance(i, Mapping)]
    total = len(ids)
    return {"figure": "rules", "surface": surface, "catalog": total, "hidden": len(hidden_all),
            "hidden_share": len(hidden_all) / total if total else 0.0,
            "rules": [{**r, "share": r["hidden"] / total if total else 0.0} for r in per_rule[:MAX_BARS]],
            "rules_not_shown": max(0, len(per_rule) - MAX_BARS), "servable": total - len(hidden_all),
            "served": len(served_ids), "served_published": sum(1 for i in served_ids if i in ids)}
