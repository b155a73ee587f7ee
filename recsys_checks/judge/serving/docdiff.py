"""A config or rules change as a person reads it: rules added and removed, each rule's fields before → after.

The field diff of :func:`recsys_checks.judge.serving.documents.diff` lists every leaf (``[3].priority``), and a rules
list that lost one rule at its head differs at every index after it: a revert reads "117 field(s) change" and says
nothing. :func:`readable_change` matches rules by what they act on instead (action, target type, target key or item
ids, surface, segment; the suite's rules carry no id), so that a revert reads::

    rule removed: block category books
    rule boost tag summer: boost_value 1.5 → 3

and a config by its paths (``weights.pop: 0 → 1``). Its ``lines`` are what a plan shows (the first few, then how many
more: :func:`recsys_checks.core.render.render_plan`); the whole field diff stays in the plan for ``--full-diff``
and ``--json``.
"""

from __future__ import annotations

from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.judge.serving.documents import diff

_MAX_VALUE = 60
# What a rule acts on: two rules with the same of these are the same rule, whatever else changed.
_IDENTITY = ("action", "target_type", "target_key", "item_ids", "surface", "segment")


def _value(value: Any) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else jsonio.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _rules(doc: Any) -> list[dict[str, Any]] | None:
    """The rule objects of a rules document (a list, or an object with a ``rules`` list); None for another shape."""
    if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
        doc = doc["rules"]
    if doc is None:
        return []
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        return doc
    return None


def rule_label(rule: dict[str, Any]) -> str:
    """``block category books``, ``pin item i-1,i-2 (surface home)``: what a rule does to what."""
    what = rule.get("target_key")
    if what is None and isinstance(rule.get("item_ids"), list):
        what = ",".join(str(i) for i in rule["item_ids"][:5]) + (" …" if len(rule["item_ids"]) > 5 else "")
    label = " ".join(str(p) for p in (rule.get("action") or "rule", rule.get("target_type"), what) if p is not None)
    scope = ", ".join(f"{k} {rule[k]}" for k in ("surface", "segment") if rule.get(k))
    return f"{label} ({scope})" if scope else label


def _settings(rule: dict[str, Any]) -> str:
    """`` (boost_value 5, priority 5)``: how strongly a rule acts, and whether it is off."""
    shown = [f"{k} {_value(rule[k])}" for k in ("boost_value", "max_pins", "priority") if rule.get(k) is not None]
    if rule.get("enabled") is False:
        shown.append("disabled")
    return f" ({', '.join(shown)})" if shown else ""


def _keyed(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rule in rules:
        label = rule_label(rule)
        key, n = label, 2
        while key in out:  # the same rule twice: the second is its own line
            key, n = f"{label} #{n}", n + 1
        out[key] = rule
    return out


def readable_change(kind: str, before: Any, after: Any) -> dict[str, Any]:
    """The change from ``before`` to ``after`` as a person reads it: ``added`` and ``removed`` rules (by label),
    ``changed`` fields (``{"rule"?, "field", "before", "after"}``), ``lines`` (one per item) and ``summary``
    (counts). A rules document of another shape, and a config, are read by field path."""
    old, new = (_rules(before), _rules(after)) if kind == "rules" else (None, None)
    if old is None or new is None:
        fields = diff(before, after)
        changed = [{"field": d["path"], "before": d["before"], "after": d["after"]} for d in fields]
        lines = [f"{c['field']}: {_value(c['before'])} → {_value(c['after'])}" for c in changed]
        return {"added": [], "removed": [], "changed": changed, "lines": lines,
                "summary": f"{len(changed)} field(s) change"}
    a, b = _keyed(old), _keyed(new)
    added = [k for k in b if k not in a]
    removed = [k for k in a if k not in b]
    changed = []
    for key in (k for k in b if k in a):
        for name in sorted(set(a[key]) | set(b[key])):
            if name not in _IDENTITY and a[key].get(name) != b[key].get(name):
                changed.append({"rule": key, "field": name, "before": a[key].get(name), "after": b[key].get(name)})
    lines = ([f"rule removed: {k}{_settings(a[k])}" for k in removed] + [f"rule added: {k}{_settings(b[k])}" for k in added]
             + [f"rule {c['rule']}: {c['field']} {_value(c['before'])} → {_value(c['after'])}" for c in changed])
    counts = [f"{n} rule(s) {what}" for n, what in ((len(removed), "removed"), (len(added), "added")) if n]
    if changed:
        counts.append(f"{len({c['rule'] for c in changed})} rule(s) changed")
    return {"added": added, "removed": removed, "changed": changed, "lines": lines,
            "summary": ", ".join(counts) or "no rule changes"}

