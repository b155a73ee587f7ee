"""Can the evaluation data be trusted, and what would the suite decide? Join rates, SRM, guardrails, impossible lift.

Figures follow the suite's ``recsys-eval`` definitions:

- Exposures join outcomes on the exact ``request_id``. Of exposures sharing a request id the first wins; the others
  are counted as duplicates and still count in the denominator of ``exposure_join_rate`` (exposures with at least
  one outcome / all exposure records). ``outcome_join_rate`` = outcomes that found an exposure / all outcomes.
- In an experiment, assignments are filtered to the experiment (case-insensitive id) and keyed by request id (the
  last wins); ``assignment_join_rate`` = exposures (first of each request id) that have an assignment / distinct
  assigned request ids.
- Per variant: exposures, clicks, conversions, CTR = clicks / exposures, conversion rate, revenue (sum of the
  conversions' ``value``), revenue per request; guardrails: p95 of ``latency_ms`` taken as the element at index
  ``floor((n - 1) * 0.95)`` of the sorted latencies (no interpolation), error rate = exposures with ``error: true`` /
  exposures, empty rate = exposures with no items / exposures. A guardrail threshold of 0 turns it off.
- SRM: Pearson's chi-squared goodness of fit of the assignment counts per variant against the expected weights
  (equal by default), df = variants - 1; detected when the sample is at least ``min_sample`` and p < ``alpha``.
  Where the suite gives up (p = 1) because a variant has no expected weight, this check reports the variant as a
  data problem, and an expected variant with no assignments at all counts with 0 (the worst mismatch there is).
- Decision: ``fail`` when a primary metric of the candidate minus the control is below its threshold (0 unless
  configured), else ``hold`` on a failed guardrail of the candidate or a detected SRM, else ``ship``. The control is
  the configured one or the variant with the most exposures; the candidate the configured one or the next largest.

On top, a trust verdict the suite does not give: the data are trusted only when every line meets the contract, the
outcome join rate and (in an experiment) the assignment join rate are at least ``min_join_rate``, no SRM is
detected and nothing impossible was found (more clicks on a list than it had items, conversions without a click on
the same item, a relative lift beyond ``max_relative_lift``). The exposure join rate is reported but is no trust
signal: most lists are never clicked, so it cannot be higher than the click-through rate.

Memory stays flat however large the files are: lines are validated as they stream, written in compact form to
temporary partitions by a hash of the request id, and joined one partition at a time; latencies go to disk and
their p95 is selected exactly in fixed-size chunks.
"""

from __future__ import annotations

import marshal
import math
import os
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_checks.core.errors import BadInput
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.evaluation.logs import BadLine, open_log, read_log

__all__ = [
    "DEFAULTS",
    "decide",
    "check_eval_quality",
    "p95_index",
    "percentile_on_disk",
    "segment_key",
    "srm_test",
]

DEFAULTS: dict[str, Any] = {
    "min_join_rate": 0.95,
    "srm_alpha": 0.001,
    "srm_min_sample": 100,
    # The suite's shipped alerts: p95 above 250 ms, errors above 1 %, empty lists above 2 %.
    "max_latency_p95_ms": 250.0,
    "max_error_rate": 0.01,
    "max_empty_rate": 0.02,
    "max_relative_lift": 0.5,
    "primary_metrics": ("ctr",),
}
MAX_BAD_LINES_SHOWN = 20
MAX_EXAMPLES = 5
MAX_SEGMENTS = 10_000
PARTITION_INPUT_BYTES = 8 * 1024 * 1024  # input bytes per partition: bounds what one partition holds in memory
MAX_PARTITIONS = 512
_CHUNK = 65536


def rate(count: float, total: float) -> float:
    """``count / total``, 0 for an empty total (as the suite reports it)."""
    return count / total if total else 0.0


def p95_index(n: int, p: float = 0.95) -> int:
    """Index of the suite's percentile in ``n`` sorted values: ``floor((n - 1) * p)``."""
    return min(max(int((n - 1) * p), 0), max(n - 1, 0))


def segment_key(context: Mapping[str, str] | None, keys: Iterable[str]) -> str:
    """The suite's segment key: ``key=value`` of each slice key, sorted, joined with ``|`` (``__all__`` for none)."""
    keys = list(keys)
    if not keys:
        return "__all__"
    ctx = context or {}
    return "|".join(sorted(f"{k}={ctx.get(k, '')}" for k in keys))


# ------------------------------------------------------------------------------------------------ statistics


def srm_test(observed: Mapping[str, int], weights: Mapping[str, float] | None = None, *, alpha: float = 0.001,
             min_sample: int = 100) -> dict[str, Any]:
    """Pearson's chi-squared goodness of fit of ``observed`` counts per variant against ``weights``.

    Equal weights over the observed variants by default. Returns ``p_value``, ``chi2``, ``df``, ``observed``,
    ``expected`` (counts), ``sample_size``, ``detected`` and ``unexpected_variants`` (observed, but without a
    weight).
    """
    from scipy.stats import chi2

    total = sum(observed.values())
    if weights:
        bad = {k: v for k, v in weights.items() if not isinstance(v, int | float) or v < 0 or not math.isfinite(v)}
        if bad or sum(weights.values()) <= 0:
            raise BadInput(f"expected weights must be non-negative numbers with a positive sum, got {dict(weights)}")
        w = {k: float(v) for k, v in weights.items()}
    else:
        w = {k: 1.0 for k in observed}
    unexpected = sorted(k for k in observed if k not in w)
    known = sorted(k for k in w if w[k] > 0)
    counted = sum(observed.get(k, 0) for k in known)
    wsum = sum(w[k] for k in known)
    expected = {k: w[k] / wsum * counted for k in known} if wsum else {}
    stat = sum((observed.get(k, 0) - e) ** 2 / e for k, e in expected.items() if e > 0)
    df = len([e for e in expected.values() if e > 0]) - 1
    p = float(chi2.sf(stat, df)) if df >= 1 and counted > 0 else 1.0
    if not math.isfinite(p):
        p = 1.0
    return {
        "p_value": p,
        "chi2": stat,
        "df": max(df, 0),
        "observed": {k: observed.get(k, 0) for k in sorted(set(observed) | set(known))},
        "expected": expected,
        "sample_size": total,
        "detected": total >= min_sample and p < alpha,
        "unexpected_variants": unexpected,
    }


def percentile_on_disk(path: str | os.PathLike[str], n: int, p: float = 0.95) -> float:
    """Exact value at :func:`p95_index` of ``n`` non-negative float64 values stored in a file, unsorted.

    A radix selection over the values' bit patterns, 16 bits per pass, reading the file in fixed-size chunks:
    four passes, memory independent of ``n``. Non-negative IEEE-754 doubles order like their bit patterns, and
    latencies are non-negative by contract (-0.0 is stored as 0.0).
    """
    import numpy as np

    if n <= 0:
        return 0.0
    k = p95_index(n, p)
    prefix = 0
    for shift in (48, 32, 16, 0):
        hist = np.zeros(65536, dtype=np.int64)
        with open(path, "rb") as fh:
            while True:
                chunk = np.fromfile(fh, dtype=np.float64, count=_CHUNK)
                if chunk.size == 0:
                    break
                keys = chunk.view(np.uint64)
                if shift < 48:
                    keys = keys[(keys >> np.uint64(shift + 16)) == np.uint64(prefix)]
                hist += np.bincount(((keys >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64),
                                    minlength=65536)
        cum = np.cumsum(hist)
        digit = int(np.searchsorted(cum, k, side="right"))
        if digit > 0:
            k -= int(cum[digit - 1])
        prefix = (prefix << 16) | digit
    return float(np.array([prefix], dtype=np.uint64).view(np.float64)[0])


# ------------------------------------------------------------------------------------------------ accumulation


@dataclass
class _Variant:
    name: str
    exposures: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    errors: int = 0
    empty: int = 0

    def metrics(self) -> dict[str, Any]:
        return {
            "variant": self.name, "exposures": self.exposures, "clicks": self.clicks,
            "conversions": self.conversions, "ctr": rate(self.clicks, self.exposures),
            "conversion_rate": rate(self.conversions, self.exposures), "revenue": self.revenue,
            "revenue_per_request": rate(self.revenue, self.exposures),
        }


@dataclass
class _Log:
    kind: str
    path: str
    lines: int = 0
    good: int = 0
    bad: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.path, "lines": self.lines, "good": self.good, "bad": self.bad}


@dataclass
class _State:
    logs: dict[str, _Log] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    exposure_count: int = 0
    exposure_missing: int = 0
    outcome_count: int = 0
    assignment_count: int = 0
    srm_global: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    srm_segments: dict[str, dict[str, int]] = field(default_factory=dict)
    segments_dropped: int = 0
    experiments: set[str] = field(default_factory=set)
    exposures_joined: int = 0
    outcomes_joined: int = 0
    duplicate_exposures: int = 0
    duplicate_outcomes: int = 0
    duplicate_assignments: int = 0
    assigned_ids: int = 0
    assigned_exposures: int = 0
    orphan_outcomes: int = 0
    orphan_examples: list[str] = field(default_factory=list)
    over_clicked: int = 0
    over_clicked_examples: list[str] = field(default_factory=list)
    unclicked_conversions: int = 0
    unclicked_examples: list[str] = field(default_factory=list)
    variants: dict[str, _Variant] = field(default_factory=dict)


def _example(bucket: list[str], value: str) -> None:
    if len(bucket) < MAX_EXAMPLES:
        bucket.append(value)


class _Latencies:
    """Latencies of one variant, appended to a file of float64 in fixed-size batches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh = open(path, "wb")
        self._buf = array("d")

    def add(self, value: float) -> None:
        self._buf.append(value + 0.0)  # -0.0 + 0.0 is 0.0: keeps the bit order of the values
        self.count += 1
        if len(self._buf) >= _CHUNK:
            self._buf.tofile(self._fh)
            self._buf = array("d")

    def close(self) -> None:
        if self._fh.closed:
            return
        self._buf.tofile(self._fh)
        self._fh.close()

    def p95(self) -> float:
        self.close()
        return percentile_on_disk(self.path, self.count)


class _Partitions:
    """Compact records of one kind, spread over ``count`` temporary files by a hash of the request id."""

    def __init__(self, workdir: Path, kind: str, count: int) -> None:
        self.paths = [workdir / f"{kind}-{i:04d}.bin" for i in range(count)]
        self._files: list[Any] = []

    def __enter__(self) -> _Partitions:
        self._files = [open(p, "wb") for p in self.paths]
        return self

    def write(self, request_id: str, record: tuple) -> None:
        marshal.dump(record, self._files[hash(request_id) % len(self._files)])

    def __exit__(self, *exc: object) -> None:
        for fh in self._files:
            fh.close()
        self._files = []

    def read(self, index: int) -> Iterator[tuple]:
        with open(self.paths[index], "rb") as fh:
            while True:
                try:
                    yield marshal.load(fh)
                except EOFError:
                    return


def _partition_count(paths: Iterable[Path], partition_bytes: int) -> int:
    total = sum(os.stat(p).st_size for p in paths)
    return max(1, min(MAX_PARTITIONS, math.ceil(total / max(partition_bytes, 1))))


def _scan(state: _State, path: Path, kind: str) -> Iterator[dict]:
    log = state.logs.setdefault(kind, _Log(kind, str(path)))
    for number, record, bad in read_log(path, kind):
        log.lines = number
        if bad is not None:
            log.bad += 1
            if len(state.bad_lines) < MAX_BAD_LINES_SHOWN:
                state.bad_lines.append(bad)
            continue
        log.good += 1
        yield record  # type: ignore[misc]


def _join_partition(state: _State, index: int, exp: _Partitions, out: _Partitions, asg: _Partitions | None,
                    latencies: dict[str, _Latencies], workdir: Path) -> None:
    first: dict[str, tuple] = {}
    for rec in exp.read(index):
        if rec[0] in first:
            state.duplicate_exposures += 1
        else:
            first[rec[0]] = rec
    outcomes: dict[str, list[tuple]] = defaultdict(list)
    seen_outcomes: set[tuple] = set()
    for rec in out.read(index):
        if rec in seen_outcomes:
            state.duplicate_outcomes += 1
        else:
            seen_outcomes.add(rec)
        outcomes[rec[0]].append(rec)
    del seen_outcomes
    assigned: dict[str, str] = {}
    if asg is not None:
        for rid, variant in asg.read(index):
            if rid in assigned:
                state.duplicate_assignments += 1
            assigned[rid] = variant  # the last assignment of a request id wins, as in the suite
    state.assigned_ids += len(assigned)
    for rid, (_, items, latency, error) in first.items():
        outs = outcomes.get(rid)
        clicks = conversions = 0
        revenue = 0.0
        if outs:
            state.exposures_joined += 1
            state.outcomes_joined += len(outs)
            clicked = set()
            for _, item, is_click, _value, _ts in outs:
                if is_click:
                    clicks += 1
                    clicked.add(item)
            for _, item, is_click, value, _ts in outs:
                if not is_click:
                    conversions += 1
                    revenue += value
                    if item not in clicked:
                        state.unclicked_conversions += 1
                        _example(state.unclicked_examples, f"{rid}/{item}")
            if clicks > len(items):
                state.over_clicked += 1
                _example(state.over_clicked_examples, f"{rid} ({clicks} clicks, {len(items)} items)")
        variant = assigned.get(rid)
        if variant is None:
            continue
        state.assigned_exposures += 1
        acc = state.variants.get(variant)
        if acc is None:
            acc = state.variants[variant] = _Variant(variant)
            latencies[variant] = _Latencies(workdir / f"latency-{len(latencies):04d}.f64")
        acc.exposures += 1
        acc.clicks += clicks
        acc.conversions += conversions
        acc.revenue += revenue
        if error:
            acc.errors += 1
        if not items:
            acc.empty += 1
        if latency is not None:
            latencies[variant].add(latency)
    for rid, outs in outcomes.items():
        if rid not in first:
            state.orphan_outcomes += len(outs)
            _example(state.orphan_examples, rid)


# ------------------------------------------------------------------------------------------------ decision


def _pick(variants: Mapping[str, int], configured: str | None, exclude: str | None = None) -> str | None:
    if configured is not None and (configured in variants or exclude is not None):
        return configured
    ranked = sorted((v for v in variants if v != exclude), key=lambda v: (-variants[v], v))
    return ranked[0] if ranked else None


def decide(variants: list[dict[str, Any]], guardrails: list[dict[str, Any]], srm_detected: bool, *,
           control_variant: str | None = None, candidate_variant: str | None = None,
           primary_metrics: Iterable[str] = ("ctr",), primary_thresholds: Mapping[str, float] | None = None
           ) -> dict[str, Any] | None:
    """The suite's decision from variant metrics and guardrails; ``None`` with fewer than two variants."""
    sizes = {v["variant"]: int(v.get("exposures") or 0) for v in variants}
    if len(sizes) < 2:
        return None
    control = _pick(sizes, control_variant)
    candidate = _pick(sizes, candidate_variant, exclude=control)
    by_name = {v["variant"]: v for v in variants}
    thresholds = {k.lower(): float(v) for k, v in (primary_thresholds or {}).items()}
    rows, primary_fail = [], False
    for metric in [m.lower() for m in primary_metrics] or ["ctr"]:
        before = float((by_name.get(control) or {}).get(metric) or 0.0)
        after = float((by_name.get(candidate) or {}).get(metric) or 0.0)
        delta = after - before
        threshold = thresholds.get(metric, 0.0)
        failed = delta < threshold
        primary_fail = primary_fail or failed
        rows.append({"metric": metric, "control": before, "candidate": after, "delta": delta,
                     "relative_delta": delta / before if before else 0.0, "threshold": threshold,
                     "passed": not failed})
    failed_guardrails = [
        f"{name} {g[key]:.4g}"
        for g in guardrails if g["variant"] == candidate
        for name, key, ok in (("p95 latency ms", "latency_p95_ms", "pass_latency"),
                              ("error rate", "error_rate", "pass_error_rate"),
                              ("empty rate", "empty_rate", "pass_empty_rate"))
        if not g.get(ok, True)
    ]
    if primary_fail:
        value, reason = "fail", "primary metric regression"
    elif failed_guardrails:
        value, reason = "hold", "guardrail regression"
    elif srm_detected:
        value, reason = "hold", "srm detected"
    else:
        value, reason = "ship", ""
    return {"decision": value, "reason": reason, "control_variant": control, "candidate_variant": candidate,
            "primary_metrics": rows, "failed_guardrails": failed_guardrails, "srm_detected": srm_detected}


def guardrail_row(variant: str, p95: float, error_rate: float, empty_rate: float, thresholds: Mapping[str, float]
                  ) -> dict[str, Any]:
    """Guardrails of one variant; a threshold of 0 (or None) passes, as in the suite."""
    def ok(value: float, limit: float | None) -> bool:
        return not limit or value <= limit

    return {"variant": variant, "latency_p95_ms": p95, "error_rate": error_rate, "empty_rate": empty_rate,
            "pass_latency": ok(p95, thresholds.get("max_latency_p95_ms")),
            "pass_error_rate": ok(error_rate, thresholds.get("max_error_rate")),
            "pass_empty_rate": ok(empty_rate, thresholds.get("max_empty_rate"))}


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


def verdict(check: str, data: dict[str, Any], problems: list[str], target: str | None) -> CheckResult:
    """Status and summary from the trust problems and the decision (shared by data and report triage)."""
    data["trusted"] = not problems
    data["trust_problems"] = problems
    decision = data.get("decision_detail")
    data["decision"] = decision["decision"] if decision else None
    said = (f"the suite's rules say {decision['decision']}" + (f" ({decision['reason']})" if decision["reason"]
                                                                else "")) if decision else "no decision (not an experiment with two variants)"
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        summary = f"data cannot be trusted: {problems[0]}{more}; {said}, but do not act on it: hold changes"
        return CheckResult(check, "fail", summary, data, None, target)
    if decision is None or decision["decision"] != "ship":
        return CheckResult(check, "warn", f"data can be trusted; {said}", data, None, target)
    return CheckResult(check, "ok", f"data can be trusted; {said}", data, None, target)


# ------------------------------------------------------------------------------------------------ the check


def check_eval_quality(
    exposures: str | os.PathLike[str],
    outcomes: str | os.PathLike[str],
    assignments: str | os.PathLike[str] | None = None,
    experiment_id: str | None = None,
    *,
    min_join_rate: float = DEFAULTS["min_join_rate"],
    srm_alpha: float = DEFAULTS["srm_alpha"],
    srm_min_sample: int = DEFAULTS["srm_min_sample"],
    expected_weights: Mapping[str, float] | None = None,
    slice_keys: Iterable[str] | None = None,
    control_variant: str | None = None,
    candidate_variant: str | None = None,
    primary_metrics: Iterable[str] = DEFAULTS["primary_metrics"],
    primary_thresholds: Mapping[str, float] | None = None,
    max_latency_p95_ms: float | None = DEFAULTS["max_latency_p95_ms"],
    max_error_rate: float | None = DEFAULTS["max_error_rate"],
    max_empty_rate: float | None = DEFAULTS["max_empty_rate"],
    max_relative_lift: float | None = DEFAULTS["max_relative_lift"],
    workdir: str | os.PathLike[str] | None = None,
    partition_bytes: int = PARTITION_INPUT_BYTES,
) -> CheckResult:
    """Read exposure, outcome and (for an experiment) assignment JSONL logs; say whether they can be trusted.

    ``ok``: trusted and the suite would ship; ``warn``: trusted, but hold, fail or no decision; ``fail``: the
    data cannot be trusted (``data["trust_problems"]`` says why). Missing or unreadable files raise
    :class:`BadInput`. Temporary partitions go under ``workdir`` (default: the system's temporary directory) and
    are removed afterwards.
    """
    if not 0 < min_join_rate <= 1:
        raise BadInput(f"min_join_rate {min_join_rate} must be in (0, 1], e.g. 0.95")
    if not 0 < srm_alpha < 1:
        raise BadInput(f"srm_alpha {srm_alpha} must be in (0, 1), e.g. 0.001")
    if srm_min_sample < 0:
        raise BadInput(f"srm_min_sample {srm_min_sample} must be at least 0")
    slice_keys = [k for k in (slice_keys or []) if k]
    paths = {"exposure": open_log(exposures, "exposure"), "outcome": open_log(outcomes, "outcome")}
    if assignments is not None:
        paths["assignment"] = open_log(assignments, "assignment")
    if expected_weights is not None:
        srm_test({}, expected_weights)  # refuse bad weights before reading anything
    thresholds = {"max_latency_p95_ms": max_latency_p95_ms, "max_error_rate": max_error_rate,
                  "max_empty_rate": max_empty_rate}
    state = _State()
    count = _partition_count(paths.values(), partition_bytes)
    with tempfile.TemporaryDirectory(prefix="recsys-eval-", dir=workdir) as tmp:
        work = Path(tmp)
        exp = _partition_exposures(state, paths["exposure"], work, count)
        out = _partition_outcomes(state, paths["outcome"], work, count)
        asg = None
        if "assignment" in paths:
            asg = _partition_assignments(state, paths["assignment"], work, count, experiment_id, slice_keys)
        latencies: dict[str, _Latencies] = {}
        try:
            for index in range(count):
                _join_partition(state, index, exp, out, asg, latencies, work)
        finally:
            for lat in latencies.values():
                lat.close()
        guardrails = []
        for name, acc in state.variants.items():
            p95 = latencies[name].p95()
            guardrails.append(guardrail_row(name, p95, rate(acc.errors, acc.exposures), rate(acc.empty, acc.exposures),
                                            thresholds))
    guardrails.sort(key=lambda g: g["variant"])
    variants = [state.variants[k].metrics() for k in sorted(state.variants)]
    return _result(state, paths, experiment_id, variants, guardrails, thresholds, min_join_rate=min_join_rate,
                   srm_alpha=srm_alpha, srm_min_sample=srm_min_sample, expected_weights=expected_weights,
                   slice_keys=slice_keys, control_variant=control_variant, candidate_variant=candidate_variant,
                   primary_metrics=primary_metrics, primary_thresholds=primary_thresholds,
                   max_relative_lift=max_relative_lift, partitions=count)


def _partition_exposures(state: _State, path: Path, work: Path, count: int) -> _Partitions:
    """Count the exposures and write each, by request id, into its partition."""
    exp = _Partitions(work, "exposure", count)
    with exp:
        for rec in _scan(state, path, "exposure"):
            state.exposure_count += 1
            items = tuple(i["item_id"] for i in rec["items"])
            if not items:
                state.exposure_missing += 1
            exp.write(rec["request_id"], (rec["request_id"], items, rec.get("latency_ms"), rec.get("error") is True))
    return exp


def _partition_outcomes(state: _State, path: Path, work: Path, count: int) -> _Partitions:
    """Count the outcomes and write each, by request id, into its partition."""
    out = _Partitions(work, "outcome", count)
    with out:
        for rec in _scan(state, path, "outcome"):
            state.outcome_count += 1
            out.write(rec["request_id"], (rec["request_id"], rec["item_id"], rec["event_type"] == "click",
                                          float(rec.get("value", 0.0)), rec["ts"]))
    return out


def _partition_assignments(state: _State, path: Path, work: Path, count: int, experiment_id: str | None,
                           slice_keys: list[str]) -> _Partitions:
    """Count the experiment's assignments per variant (and per segment) and write each into its partition."""
    asg = _Partitions(work, "assignment", count)
    with asg:
        for rec in _scan(state, path, "assignment"):
            state.assignment_count += 1
            state.experiments.add(rec["experiment_id"])
            if experiment_id and rec["experiment_id"].lower() != experiment_id.lower():
                continue
            state.srm_global[rec["variant"]] += 1
            if slice_keys:
                seg = segment_key(rec.get("context"), slice_keys)
                if seg in state.srm_segments or len(state.srm_segments) < MAX_SEGMENTS:
                    bucket = state.srm_segments.setdefault(seg, defaultdict(int))
                    bucket[rec["variant"]] += 1
                else:
                    state.segments_dropped += 1
            asg.write(rec["request_id"], (rec["request_id"], rec["variant"]))
    return asg


def _result(state: _State, paths: dict[str, Path], experiment_id: str | None, variants: list[dict[str, Any]],
            guardrails: list[dict[str, Any]], thresholds: dict[str, Any], *, min_join_rate: float, srm_alpha: float,
            srm_min_sample: int, expected_weights: Mapping[str, float] | None, slice_keys: list[str],
            control_variant: str | None, candidate_variant: str | None, primary_metrics: Iterable[str],
            primary_thresholds: Mapping[str, float] | None, max_relative_lift: float | None,
            partitions: int) -> CheckResult:
    experiment = "assignment" in paths
    join = _join_integrity(state, experiment)
    completeness = {
        "exposure": {"total": state.exposure_count, "missing": state.exposure_missing,
                     "missing_rate": rate(state.exposure_missing, state.exposure_count)},
        "outcome": {"total": state.outcome_count, "missing": 0, "missing_rate": 0.0},
    }
    if experiment:
        completeness["assignment"] = {"total": state.assignment_count, "missing": 0, "missing_rate": 0.0}
    problems, notes = _join_problems(state, join, experiment, experiment_id, min_join_rate)
    srm = _srm(state, problems, notes, srm_alpha=srm_alpha, srm_min_sample=srm_min_sample,
               expected_weights=expected_weights, slice_keys=slice_keys) if experiment else None
    decision = decide(variants, guardrails, bool(srm and (srm["global"]["detected"] or any(
        r["detected"] for r in (srm.get("by_segment") or {}).values()))),
        control_variant=control_variant, candidate_variant=candidate_variant, primary_metrics=primary_metrics,
        primary_thresholds=primary_thresholds) if experiment else None
    impossible = _impossible(state, decision, variants, max_relative_lift)
    problems += [f"impossible: {finding['detail']}" for finding in impossible]
    if state.orphan_outcomes:
        impossible.insert(0, {"check": "outcome_without_exposure", "count": state.orphan_outcomes,
                              "detail": f"{state.orphan_outcomes} outcome(s) whose request id matches no exposure "
                                        "(left out of every metric; the outcome join rate judges them)",
                              "examples": state.orphan_examples})
    data: dict[str, Any] = {
        "inputs": {k: str(v) for k, v in paths.items()} | {"experiment_id": experiment_id},
        "lines": [log.to_dict() for log in state.logs.values()],
        "bad_lines": [b.to_dict() for b in state.bad_lines],
        "completeness": completeness,
        "join_integrity": join,
        "exposure_join_rate": join["exposure_join_rate"],
        "outcome_join_rate": join["outcome_join_rate"],
        "assignment_join_rate": join["assignment_join_rate"],
        "duplicates": {"exposure_request_ids": state.duplicate_exposures, "outcomes": state.duplicate_outcomes,
                       "assignment_request_ids": state.duplicate_assignments},
        "variants": variants,
        "guardrails": guardrails,
        "srm": srm,
        "impossible": impossible,
        "decision_detail": decision,
        "notes": notes,
        "thresholds": {"min_join_rate": min_join_rate, **thresholds, "max_relative_lift": max_relative_lift,
                       "srm_alpha": srm_alpha, "srm_min_sample": srm_min_sample,
                       "expected_weights": dict(expected_weights) if expected_weights else None},
        "partitions": partitions,
    }
    return verdict("eval.quality", data, problems, str(paths["exposure"]))


def _join_integrity(state: _State, experiment: bool) -> dict[str, Any]:
    return {
        "exposure_count": state.exposure_count,
        "outcome_count": state.outcome_count,
        "assignments_count": state.assigned_ids,
        "duplicate_exposure_request_ids": state.duplicate_exposures,
        "exposures_joined": state.exposures_joined,
        "outcomes_joined": state.outcomes_joined,
        "orphan_outcomes": state.orphan_outcomes,
        "exposure_join_rate": rate(state.exposures_joined, state.exposure_count),
        "outcome_join_rate": rate(state.outcomes_joined, state.outcome_count),
        "assignment_join_rate": rate(state.assigned_exposures, state.assigned_ids) if experiment else None,
        "assigned_exposures": state.assigned_exposures if experiment else None,
    }


def _join_problems(state: _State, join: dict[str, Any], experiment: bool, experiment_id: str | None,
                   min_join_rate: float) -> tuple[list[str], list[str]]:
    """Problems (the data cannot be trusted) and notes of the lines and the joins."""
    problems: list[str] = []
    notes: list[str] = []
    bad_total = sum(log.bad for log in state.logs.values())
    if bad_total:
        first = state.bad_lines[0]
        problems.append(f"{bad_total} line(s) break the contract, first {first}")
    if state.outcome_count == 0:
        problems.append("no outcomes: nothing joins, every KPI would be 0")
    elif join["outcome_join_rate"] < min_join_rate:
        problems.append(f"outcome join rate {join['outcome_join_rate']:.1%} is below {min_join_rate:.0%} "
                        f"({state.orphan_outcomes} outcome(s) match no exposure, e.g. "
                        f"{', '.join(state.orphan_examples[:3])})")
    elif state.orphan_outcomes:
        notes.append(f"{state.orphan_outcomes} outcome(s) match no exposure; they are left out of every metric")
    if experiment:
        if state.assigned_ids == 0:
            problems.append("no assignments" + (f" for experiment {experiment_id}" if experiment_id else "")
                            + (f" (the file has {', '.join(sorted(state.experiments)[:5])})" if state.experiments
                               else ""))
        elif join["assignment_join_rate"] < min_join_rate:
            problems.append(f"assignment join rate {join['assignment_join_rate']:.1%} is below {min_join_rate:.0%}: "
                            "assigned requests without an exposure")
        if not experiment_id and len(state.experiments) > 1:
            notes.append(f"assignments of {len(state.experiments)} experiments mixed; pass the experiment id")
    notes.append(f"exposure join rate {join['exposure_join_rate']:.1%} is reported, not a trust signal: lists that "
                 "nobody clicked have no outcome, so it cannot exceed the share of lists clicked")
    return problems, notes


def _srm(state: _State, problems: list[str], notes: list[str], *, srm_alpha: float, srm_min_sample: int,
         expected_weights: Mapping[str, float] | None, slice_keys: list[str]) -> dict[str, Any]:
    """Sample ratio mismatch tests, global and per segment; a mismatch is added to ``problems``."""
    srm = {"alpha": srm_alpha, "min_sample": srm_min_sample,
           "global": srm_test(state.srm_global, expected_weights, alpha=srm_alpha, min_sample=srm_min_sample)}
    if slice_keys:
        srm["by_segment"] = {seg: srm_test(counts, expected_weights, alpha=srm_alpha, min_sample=srm_min_sample)
                             for seg, counts in sorted(state.srm_segments.items())}
        if state.segments_dropped:
            notes.append(f"more than {MAX_SEGMENTS} segments: {state.segments_dropped} assignment(s) of further "
                         "segments were not tested per segment")
    g = srm["global"]
    if g["detected"]:
        problems.append(f"sample ratio mismatch: p = {g['p_value']:.3g} < {srm_alpha:g} on {g['sample_size']} "
                        f"assignments (observed {dict(g['observed'])})")
    if g["unexpected_variants"]:
        problems.append(f"assignments to variant(s) {', '.join(g['unexpected_variants'])} that the expected "
                        "weights do not name")
    seg_hits = [s for s, r in (srm.get("by_segment") or {}).items() if r["detected"]]
    if seg_hits:
        problems.append(f"sample ratio mismatch in segment(s) {', '.join(seg_hits[:5])}")
    return srm


def _impossible(state: _State, decision: dict[str, Any] | None, variants: list[dict[str, Any]],
                max_relative_lift: float | None) -> list[dict[str, Any]]:
    """What the data shows that cannot happen: more clicks than items, conversions without a click, lifts too
    large to be true."""
    impossible = []
    if state.over_clicked:
        impossible.append({"check": "more_clicks_than_items", "count": state.over_clicked,
                           "detail": f"{state.over_clicked} list(s) with more clicks than items shown",
                           "examples": state.over_clicked_examples})
    if state.unclicked_conversions:
        impossible.append({"check": "conversion_without_click", "count": state.unclicked_conversions,
                           "detail": f"{state.unclicked_conversions} conversion(s) of an item never clicked in "
                                     "that list", "examples": state.unclicked_examples})
    impossible += lift_findings(decision, variants, max_relative_lift)
    return impossible
