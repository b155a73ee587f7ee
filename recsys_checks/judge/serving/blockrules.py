"""The tenant's block rules as the service applies them: which are active for a surface now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recsys_checks.core.timefmt import parse_time


def rule_active(rule: dict[str, Any], surface: str, now: datetime, segment: str = "default") -> bool:
    """Whether ``rule`` is in force for ``surface`` and ``segment`` at ``now``: enabled and in its window."""
    if rule.get("enabled") is False:
        return False
    if rule.get("surface") not in (None, "", surface):
        return False
    if rule.get("segment") not in (None, "", segment):
        return False
    start, end = parse_time(rule.get("valid_from")), parse_time(rule.get("valid_until"))
    return (start is None or start <= now) and (end is None or now < end)


def active_blocks(rules: Any, surface: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The enabled, in-window block rules that apply to ``surface``."""
    now = now or datetime.now(UTC)
    return [
        r for r in rules or []
        if isinstance(r, dict) and r.get("action") == "block" and rule_active(r, surface, now)
    ]


def intended_rules(doc: Any) -> list[dict[str, Any]]:
    """The rules a rules document says, whether or not the service applies them: the raw list, or the list a
    document wrapped as ``{"rules": [...]}`` holds (the service applies none of those, yet they are what was meant)."""
    rules = doc.get("rules") if isinstance(doc, dict) else doc
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def blocked_items(rules: Any, surface: str, now: datetime, segment: str = "default") -> set[str]:
    """The item ids the in-force item block rules of ``surface`` and ``segment`` name (tag, brand and category
    blocks name the service's catalog attributes, which are not known here)."""
    return {str(i) for r in rules or [] if isinstance(r, dict) and r.get("action") == "block"
            and r.get("target_type", "item") == "item" and rule_active(r, surface, now, segment)
            for i in (r.get("item_ids") or ([r["target_key"]] if r.get("target_key") else []))}
