"""Sample ratio mismatch: Pearson's chi-squared test of assignment counts per variant against expected weights.

As the suite's ``recsys-eval``: equal weights over the observed variants by default, df = variants - 1, detected
when the sample is at least ``min_sample`` and p < ``alpha``. ``expected`` means what it means in the suite's report:
the **weights** (as configured, or 1 per observed variant); the counts they imply are ``expected_counts``. Where the
suite gives up (p = 1) because a variant has no expected weight, this test reports the variant as a data problem
(``unexpected_variants``), and an expected variant with no assignments at all counts with 0 (the worst mismatch
there is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.evaluation.trust import Findings

__all__ = ["valid_weights", "srm_findings", "srm_test"]


def valid_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """``weights`` as floats; :class:`BadInput` unless they are non-negative numbers with a positive sum."""
    bad = {k: v for k, v in weights.items()
           if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or not math.isfinite(v)}
    if bad or sum(weights.values()) <= 0:
        raise BadInput(f"expected weights must be non-negative numbers with a positive sum, got {dict(weights)}")
    return {str(k): float(v) for k, v in weights.items()}


def srm_test(observed: Mapping[str, int], weights: Mapping[str, float] | None = None, *, alpha: float = 0.001,
             min_sample: int = 100) -> dict[str, Any]:
    """Pearson's chi-squared goodness of fit of ``observed`` counts per variant against ``weights``.

    Returns ``p_value``, ``chi2``, ``df``, ``observed``, ``expected`` (the weights), ``expected_counts``,
    ``sample_size``, ``detected`` and ``unexpected_variants`` (observed, but without a weight).
    """
    # The survival function of chi-squared (chi2.sf) from scipy.special: the same function without importing
    # scipy.stats, which takes a second or more on its own and is otherwise unused.
    from scipy.special import chdtrc

    total = sum(observed.values())
    w = valid_weights(weights) if weights else {k: 1.0 for k in observed}
    unexpected = sorted(k for k in observed if k not in w)
    known = sorted(k for k in w if w[k] > 0)
    counted = sum(observed.get(k, 0) for k in known)
    wsum = sum(w[k] for k in known)
    expected_counts = {k: w[k] / wsum * counted for k in known} if wsum else {}
    stat = sum((observed.get(k, 0) - e) ** 2 / e for k, e in expected_counts.items() if e > 0)
    df = len([e for e in expected_counts.values() if e > 0]) - 1
    p = float(chdtrc(df, stat)) if df >= 1 and counted > 0 else 1.0
    if not math.isfinite(p):
        p = 1.0
    return {
        "p_value": p,
        "chi2": stat,
        "df": max(df, 0),
        "observed": {k: observed.get(k, 0) for k in sorted(set(observed) | set(known))},
        "expected": dict(sorted(w.items())),
        "expected_counts": expected_counts,
        "sample_size": total,
        "detected": total >= min_sample and p < alpha,
        "unexpected_variants": unexpected,
    }


def srm_findings(srm: Mapping[str, Any], findings: Findings) -> None:
    """Trust problems of an SRM section (``global`` and ``by_segment`` results of :func:`srm_test`)."""
    g = srm.get("global") or {}
    where_alpha = srm.get("alpha")
    if g.get("detected"):
        p = g.get("p_value", g.get("reported_p_value"))
        recomputed = "" if g.get("reported_detected", True) else " (recomputed; the report said none)"
        findings.problem("srm", f"sample ratio mismatch: p = {p:.3g} < {where_alpha:g} on {g.get('sample_size')} "
                                f"assignments (observed {dict(g.get('observed') or {})}){recomputed}")
    if g.get("unexpected_variants"):
        findings.problem("srm", f"assignments to variant(s) {', '.join(g['unexpected_variants'])} that the expected "
                                "weights do not name")
    segments = srm.get("by_segment") or {}
    hits = [s for s, r in segments.items() if r.get("detected")]
    if hits:
        findings.problem("srm", f"sample ratio mismatch in segment(s) {', '.join(hits[:5])}"
                                + (f" (+{len(hits) - 5} more)" if len(hits) > 5 else ""))
    odd = [s for s, r in segments.items() if r.get("unexpected_variants")]
    if odd:
        findings.problem("srm", f"assignments in segment(s) {', '.join(odd[:5])} to variants without an expected "
                                "weight")
