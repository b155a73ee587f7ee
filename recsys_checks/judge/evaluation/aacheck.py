"""An A/A check judged from its own p-value counts, not from the suite's ``uniformish`` flag.

With no difference between the arms, each test's p-value is uniform, so the number of tests below a threshold
``alpha`` out of ``n`` is Binomial(``n``, ``alpha``). The suite's ``uniformish`` skips every threshold whose expected
count is below 1, so below 20 tests it is always true (a real run: 8 tests, 6 below p 0.05, still ``uniformish``).
Here each threshold is judged by the exact binomial tail P(X >= k): far more tests below ``alpha`` than chance makes
the A/A fail. The exact tail keeps its power at small counts (6 of 8 below 0.05 has a tail near 4e-7); when even
every test below the threshold would not be evidence, there are too few tests to judge, and that is said.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Any

__all__ = ["LEVEL", "AAJudgement", "binomial_tail", "judge_aa"]

# The family-wise level at which an A/A is called biased, shared over its thresholds (Bonferroni).
LEVEL = 0.01


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@dataclass(frozen=True)
class AAJudgement:
    """``biased``: some threshold has far more tests below it than chance; ``judgeable``: some count could show it;
    ``rows``: per threshold, the count below it, the share against alpha and the binomial tail."""

    total: int
    biased: bool
    judgeable: bool
    rows: tuple[dict[str, Any], ...]
    min_tests: int

    def text(self) -> str:
        if not self.rows:
            return "the report carries no p-value counts"
        main, worst = self.rows[0], min(self.rows, key=lambda r: r["tail"])
        said = (f"{main['below']} of {self.total} tests below p {main['alpha']:g} (share {main['share']:.2f} against "
                f"{main['alpha']:g} by chance)" + "".join(f", {r['below']} below p {r['alpha']:g}" for r in self.rows[1:])
                + f"; P = {worst['tail']:.2g} at p {worst['alpha']:g} if the arms are equal")
        if self.biased:
            return f"{said}: far more significant differences than chance"
        if not self.judgeable:
            return (f"{self.total} tests are too few to judge: even all of them below p {main['alpha']:g} would not "
                    f"be evidence at level {LEVEL:g}; at least {self.min_tests} are needed")
        return f"{said}: as many as chance gives"


def _min_tests(alpha: float, level: float) -> int:
    """The fewest tests at which all of them below ``alpha`` would be evidence at ``level``."""
    n = 1
    while alpha**n >= level and n < 1000:
        n += 1
    return n


def judge_aa(counts: dict[float, int], total: int) -> AAJudgement:
    """Judge an A/A from ``counts`` (tests below each threshold, summed over the metrics) out of ``total`` tests."""
    level = LEVEL / max(1, len(counts))
    rows = []
    for alpha, below in sorted(counts.items(), reverse=True):
        share = below / total if total else 0.0
        rows.append({"alpha": alpha, "below": below, "share": share, "expected": alpha * total,
                     "tail": binomial_tail(below, total, alpha)})
    biased = any(r["tail"] < level for r in rows)
    # Judged by the largest threshold, where a bias shows first: could any count of these tests be evidence?
    main = rows[0]["alpha"] if rows else 0.0
    judgeable = total > 0 and bool(rows) and main**total < level
    min_tests = _min_tests(main, level) if rows else 0
    return AAJudgement(total, biased, judgeable, tuple(rows), min_tests)
