"""The tenant's block rules as the service applies them: which are active for a surface now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from recsys_checks.core.timefmt import parse_time


def rule_active(rule: dict[str, Any], surface: str, now: datetime) -> bool:
    """Whether ``rule`` is in force for ``surface`` (default segment) at ``now``: enabled and in its window."""
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
        if isinstance(r, dict) and r.get("action") == "block" and rule_active(r, surface, now)
    ]
