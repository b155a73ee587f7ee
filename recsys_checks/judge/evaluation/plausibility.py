"""Figures that cannot be right, and figures that are odd but possible. The suite checks neither.

- **Impossible** (cause ``impossible_lift``): more clicks on a list than it showed items, more clicks than
  exposures (CTR above 1), a relative lift of the candidate over the control beyond ``max_relative_lift``: a join
  that double counts, or a bug.
- **Orphan conversions** (cause ``orphan_conversion``): conversions of an item nobody clicked in the same list. The
  suite has no such check and its own reference datasets contain them (a list with a buy button converts without a
  click), so they are a finding of their own, with counts and a share of all conversions: a note below
  ``max_orphan_conversion_share``, a trust problem above it (when most conversions have no click, clicks are
  probably being lost, and CTR with them). Never an impossible lift.
"""

from __future__ import annotations

from typing import Any

from recsys_checks.judge.evaluation.joins import rate
from recsys_checks.judge.evaluation.trust import Findings

__all__ = ["DEFAULT_MAX_ORPHAN_CONVERSION_SHARE", "lift_findings", "orphan_conversions"]

DEFAULT_MAX_ORPHAN_CONVERSION_SHARE = 0.5


def lift_findings(decision: dict[str, Any] | None, variants: list[dict[str, Any]], bound: float | None
                  ) -> list[dict[str, Any]]:
    """Relative lifts of the candidate over the control beyond ``bound`` on CTR and conversion rate."""
    if not decision or not bound:
        return []
    by_name = {v["variant"]: v for v in variants}
    control, candidate = by_name.get(decision["control_variant"]), by_name.get(decision["candidate_variant"])
    if not control or not candidate:
        return []
    out = []
    for metric in ("ctr", "conversion_rate"):
        before, after = float(control.get(metric) or 0), float(candidate.get(metric) or 0)
        if before > 0 and (after - before) / before > bound:
            out.append({"check": "lift_beyond_bound", "count": 1,
                        "detail": f"{metric} of {decision['candidate_variant']} is {after:.4g} against "
                                  f"{before:.4g} for {decision['control_variant']}: a relative lift of "
                                  f"{(after - before) / before:+.0%}, beyond the {bound:.0%} bound",
                        "examples": []})
    return out


def orphan_conversions(count: int, conversions: int, max_share: float | None, findings: Findings, *,
                       examples: list[str] | None = None, at_least: bool = False) -> dict[str, Any] | None:
    """The ``orphan_conversion`` finding (``None`` when there is none); a note or, above ``max_share``, a problem.

    ``at_least``: the count is a lower bound (a report's per-variant figures only show conversions beyond clicks).
    """
    if count <= 0:
        return None
    share = rate(count, conversions)
    bound = "at least " if at_least else ""
    detail = (f"{bound}{count} of {conversions} conversion(s) ({bound}{share:.0%}) have no click on the same item in "
              "the same list")
    finding = {"check": "orphan_conversion", "count": count, "conversions": conversions, "share": share,
               "max_share": max_share, "lower_bound": at_least, "detail": detail, "examples": examples or []}
    if max_share is not None and share > max_share:
        findings.problem("orphan_conversion", f"{detail}, above the {max_share:.0%} share: clicks are probably "
                                              "being lost")
    else:
        limit = f" (below the {max_share:.0%} share that makes the data untrusted)" if max_share is not None else ""
        findings.note(f"orphan conversions: {detail}{limit}; the suite does not check this")
    return finding
