"""What a count in a ``recsys-eval`` report may be: a whole number from 0 to :data:`MAX_COUNT`.

A report's counts (exposures, clicks, conversions, SRM assignments per variant, join counts, interleaving wins) are
read as JSON numbers. ``Infinity``, ``NaN`` and an overflowing literal such as ``1e400`` (read as infinity) are not
counts; neither is a negative or fractional number, nor one above 2**53, past which a JSON number held as a double
no longer counts one by one: a report claiming more exposures than that is broken, not big. Such a count makes the
report untrusted (cause ``inconsistent_report``), with a message naming the field; it is never read as absent, and
never reaches arithmetic that would overflow.
"""

from __future__ import annotations

import math
from typing import Any

from recsys_checks.judge.evaluation.trust import Findings

__all__ = ["MAX_COUNT", "count_problem", "rate_problem", "read_count"]

MAX_COUNT = 2**53
_SHOWN = 40


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text)} characters)"


def count_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a count (a phrase such as ``"is not a finite number (inf)"``), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is not a number ({_shown(value)})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"is not a finite number ({_shown(value)}; a literal such as 1e400 overflows to it)"
    if value < 0:
        return f"is negative ({_shown(value)})"
    if isinstance(value, float) and not value.is_integer():
        return f"is not a whole number ({_shown(value)})"
    if value > MAX_COUNT:
        return f"is absurd ({_shown(value)}, above 2^53, past which a JSON number cannot count one by one)"
    return None


def rate_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a rate or a per-request figure (not finite), or ``None`` (absent or finite)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"is not a finite number ({_shown(value)})"
    return None


def read_count(value: Any, where: str, findings: Findings) -> int | None:
    """``value`` as a count; ``None`` when absent, or when it cannot be one (then a problem of the report)."""
    if value is None:
        return None
    problem = count_problem(value)
    if problem:
        findings.problem("inconsistent_report", f"{where} {problem}: the report's figures cannot be trusted")
        return None
    return int(value)
