"""What "healthy" means, checked directly: the invariants the runbooks judge a surface by, whatever the cause.

A runbook that only looks for the causes it knows calls every other breakage healthy. These functions state what a
healthy surface looks like and report each way it is not, as findings (one sentence each, with the numbers), so
that a check fails on a breakage no known cause describes. They are pure: the checks read the documents and pass
them in.

- :func:`weight_findings`: config weights are finite numbers in ``[0, MAX_WEIGHT]`` and not all zero;
- :func:`hidden_share`: the share of the catalog (the popularity artifact's items) that active block rules hide,
  judged against :data:`MAX_HIDDEN_SHARE`;
- :func:`future_finding`, :func:`age_finding` (both: :func:`time_findings`): a publish time or a data window is
  neither in the future nor older than the limit;
- :func:`item_drop_finding`: an artifact has not lost more than :data:`MAX_ITEM_DROP` of the items of the version
  before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from recsys_checks.core.timefmt import age_text
from recsys_checks.judge.serving.blockrules import active_blocks

WEIGHT_KEYS = ("pop", "cooc", "emb")
# The suite's weights scale scores: beyond this, a score overflows or one signal drowns the others. No deployment
# we know of uses weights above a few units.
MAX_WEIGHT = 1_000_000.0
# Rules hiding more than half of what the surface could serve are an outage in the making, not a curation choice.
MAX_HIDDEN_SHARE = 0.5
# A new version with less than half the items of the one before it is a broken build far more often than a catalog
# that halved overnight; below MIN_ITEMS_FOR_DROP items the counts are too small to judge.
MAX_ITEM_DROP = 0.5
MIN_ITEMS_FOR_DROP = 20
# Clocks differ a little between hosts; beyond this, a time "in the future" is a clock or a bad write.
FUTURE_SKEW = timedelta(minutes=5)
# A daily window's end may lie up to one window ahead (a run over the day in progress), plus the skew.
WINDOW_AHEAD = timedelta(days=1) + FUTURE_SKEW


def weight_findings(config: Any) -> list[str]:
    """What is wrong with a config's ``weights`` (empty when nothing is)."""
    if not isinstance(config, dict):
        return [f"the config is not a JSON object ({type(config).__name__})"]
    weights = config.get("weights")
    if weights is None:
        return []
    if not isinstance(weights, dict):
        return [f"weights is not an object ({type(weights).__name__})"]
    out = []
    numeric: dict[str, float] = {}
    for key, raw in sorted(weights.items()):
        value = float(raw) if isinstance(raw, Decimal) else raw  # our JSON reader keeps numbers exact
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(f"weight {key} is {raw!r}, not a number")
        elif not math.isfinite(value):
            out.append(f"weight {key} is {value!r}, not finite")
        elif value < 0:
            out.append(f"weight {key} is {value:g}, below 0")
        elif value > MAX_WEIGHT:
            out.append(f"weight {key} is {value:g}, above the sane limit {MAX_WEIGHT:g} (scores overflow)")
        else:
            numeric[key] = float(value)
    known = [k for k in WEIGHT_KEYS if k in weights]
    if not out and known and all(numeric.get(k) == 0 for k in known):
        out.append(f"every weight ({', '.join(known)}) is 0: no signal is left to rank by")
    return out


# The suite's config schema (RECSYS-INTERFACES §2.2): these keys only, and ``limits.max_k`` within the request's
# ``k`` range, 1..200.
CONFIG_KEYS = ("weights", "flags", "limits", "algo")
LIMIT_KEYS = ("max_k",)
MAX_K = 200
# Every cause a document finding names.
SHAPE_CAUSES = ("config_out_of_schema", "config_max_k_low", "rules_not_list")


@dataclass(frozen=True)
class DocumentFinding:
    """What is wrong with a config or rules document by its shape: the cause, the field and the sentence."""

    cause: str  # config_out_of_schema | config_max_k_low | rules_not_list
    field: str
    summary: str

    def to_dict(self) -> dict[str, str]:
        return {"cause": self.cause, "field": self.field, "summary": self.summary}


_JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "int": "number", "float": "number",
               "Decimal": "number", "bool": "boolean", "NoneType": "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value).__name__, type(value).__name__)


def config_shape_findings(config: Any, k: int) -> list[DocumentFinding]:
    """A config outside the suite's schema (a key it does not have, a wrapped document, limits it does not know), or
    ``limits.max_k`` below the ``k`` the surface is used with: every answer is then cut to ``max_k`` items."""
    if not isinstance(config, dict):
        return [DocumentFinding("config_out_of_schema", "config", f"the config is a JSON {_json_type(config)}, "
                                "not the object the suite reads")]
    out = [DocumentFinding("config_out_of_schema", key, f"config field {key!r} is not in the suite's schema "
                           f"({', '.join(CONFIG_KEYS)})" + (": the document looks wrapped; the PUT body must be "
                                                            "the document itself" if key == "config" else ""))
           for key in sorted(set(config) - set(CONFIG_KEYS))]
    limits = config.get("limits")
    if limits is not None and not isinstance(limits, dict):
        out.append(DocumentFinding("config_out_of_schema", "limits", "config limits is not an object"))
    elif isinstance(limits, dict):
        out += [DocumentFinding("config_out_of_schema", f"limits.{key}", f"config limits.{key} is not a limit the "
                                f"suite has ({', '.join(LIMIT_KEYS)})") for key in sorted(set(limits) - set(LIMIT_KEYS))]
        max_k = limits.get("max_k")
        if max_k is not None and (isinstance(max_k, bool) or not isinstance(max_k, int) or not 1 <= max_k <= MAX_K):
            out.append(DocumentFinding("config_out_of_schema", "limits.max_k", f"config limits.max_k is {max_k!r}, "
                                       f"not an integer from 1 to {MAX_K}"))
        elif isinstance(max_k, int) and max_k < k:
            out.append(DocumentFinding("config_max_k_low", "limits.max_k", f"config limits.max_k is {max_k}, below "
                                       f"the k={k} the surface is asked with: every answer is cut to {max_k} items"))
    return out


def rules_shape_findings(rules: Any) -> list[DocumentFinding]:
    """A rules document that is not the raw list of rules: the suite stores it, and applies no rule from it."""
    if isinstance(rules, list) or rules is None:
        return []
    wrapped = " (it wraps them as {\"rules\": [...]}: the PUT body must be the list itself)" \
        if isinstance(rules, dict) and "rules" in rules else ""
    return [DocumentFinding("rules_not_list", "rules", f"the rules document is a JSON {_json_type(rules)}, not "
                            f"the list of rules the service applies{wrapped}: no block, pin or boost is in force")]


@dataclass
class Hidden:
    """How much of the catalog the active block rules hide for a surface."""

    total: int
    hidden: int
    hidden_ids: set[str] = field(default_factory=set)
    # Block rules on tags, brands or categories: the catalog's attributes are the service's, so what they hide
    # cannot be counted from here.
    uncounted: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.hidden / self.total if self.total else 0.0

    @property
    def too_much(self) -> bool:
        return self.total > 0 and self.share > MAX_HIDDEN_SHARE

    def finding(self) -> str | None:
        if not self.too_much:
            return None
        return (f"active block rules hide {self.hidden} of the {self.total} items the surface could serve "
                f"({self.share:.0%}, above {MAX_HIDDEN_SHARE:.0%})")


def hidden_share(rules: Any, items: list[dict[str, Any]], surface: str, now: datetime | None = None) -> Hidden:
    """The share of ``items`` (a popularity artifact's) hidden by the active item block rules of ``surface``."""
    blocks = active_blocks(rules if isinstance(rules, list) else [], surface, now)
    ids = {str(i.get("item_id")) for i in items if isinstance(i, dict)}
    blocked: set[str] = set()
    uncounted = []
    for rule in blocks:
        if rule.get("target_type", "item") == "item":
            blocked.update(str(i) for i in rule.get("item_ids") or [])
        else:
            uncounted.append(f"{rule.get('target_type')}:{rule.get('target_key')}")
    hidden = ids & blocked
    return Hidden(total=len(ids), hidden=len(hidden), hidden_ids=hidden, uncounted=sorted(set(uncounted)))


def future_finding(what: str, value: datetime | None, now: datetime, ahead: timedelta = FUTURE_SKEW) -> str | None:
    """``value`` (a publish time or a window end) lies more than ``ahead`` in the future, or ``None``.

    For a window end, ``ahead`` is :data:`WINDOW_AHEAD`: a run over the day in progress ends its window tonight,
    which is not skew; a window that has not even started is."""
    if value is None or now - value >= -ahead:
        return None
    return f"{what} {_z(value)} is {age_text(value - now)} in the future: a clock or a bad write hides every age check"


def age_finding(what: str, value: datetime | None, now: datetime, max_age: timedelta) -> str | None:
    """``value`` is older than ``max_age``, or ``None``."""
    if value is None or now - value <= max_age:
        return None
    return f"{what} {_z(value)} is {age_text(now - value)} old, above the {age_text(max_age)} limit"


def time_findings(what: str, value: datetime | None, now: datetime, max_age: timedelta, *,
                  ahead: timedelta = FUTURE_SKEW) -> list[str]:
    """Both: ``value`` is in the future (beyond ``ahead``) or older than ``max_age``."""
    return [f for f in (future_finding(what, value, now, ahead), age_finding(what, value, now, max_age)) if f]


def item_drop_finding(kind: str, items: Any, previous_items: Any, previous_version: str = "") -> str | None:
    """The current ``kind`` artifact has lost more than :data:`MAX_ITEM_DROP` of the previous version's items."""
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (items, previous_items)):
        return None
    if previous_items < MIN_ITEMS_FOR_DROP or items >= previous_items * (1 - MAX_ITEM_DROP):
        return None
    before = f"the previous version {previous_version[:12]}" if previous_version else "the previous version"
    return (f"{kind} has {items} items where {before} had {previous_items} ({1 - items / previous_items:.0%} fewer, "
            f"more than the {MAX_ITEM_DROP:.0%} a build may lose)")


def _z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
