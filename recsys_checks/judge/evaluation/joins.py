"""Reading and joining the evaluation logs as the suite's ``recsys-eval`` joins them, in flat memory.

- Exposures join outcomes on the exact ``request_id``. Of exposures sharing a request id the first wins; the others
  are counted as duplicates and still count in the denominator of ``exposure_join_rate`` (exposures with at least
  one outcome / all exposure records). ``outcome_join_rate`` = outcomes that found an exposure / all outcomes.
- In an experiment, assignments are filtered to the experiment (case-insensitive id) and keyed by request id (the
  last wins); ``assignment_join_rate`` = exposures (first of each request id) that have an assignment / distinct
  assigned request ids.
- Per variant: exposures, clicks, conversions, CTR = clicks / exposures, conversion rate, revenue (sum of the
  conversions' ``value``), revenue per request; guardrail inputs: p95 of ``latency_ms`` taken as the element at
  index ``floor((n - 1) * 0.95)`` of the sorted latencies (no interpolation), error rate = exposures with
  ``error: true`` / exposures, empty rate = exposures with no items / exposures.

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

from recsys_checks.core import progress
from recsys_checks.judge.evaluation.logs import BadLine, read_log

__all__ = ["JoinState", "MAX_EXAMPLES", "MAX_SEGMENTS", "PARTITION_INPUT_BYTES", "join_logs", "p95_index",
           "percentile_on_disk", "rate", "segment_key"]

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
class VariantTotals:
    """What one variant's assigned exposures add up to."""

    name: str
    exposures: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue: float = 0.0
    errors: int = 0
    empty: int = 0
    latency_p95_ms: float = 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "variant": self.name, "exposures": self.exposures, "clicks": self.clicks,
            "conversions": self.conversions, "ctr": rate(self.clicks, self.exposures),
            "conversion_rate": rate(self.conversions, self.exposures), "revenue": self.revenue,
            "revenue_per_request": rate(self.revenue, self.exposures),
        }


@dataclass
class LogCounts:
    kind: str
    path: str
    lines: int = 0
    good: int = 0
    bad: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.path, "lines": self.lines, "good": self.good, "bad": self.bad}


@dataclass
class JoinState:
    """Every count the join makes, filled in as the logs stream."""

    logs: dict[str, LogCounts] = field(default_factory=dict)
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
    conversions_joined: int = 0
    orphan_conversions: int = 0
    orphan_conversion_examples: list[str] = field(default_factory=list)
    variants: dict[str, VariantTotals] = field(default_factory=dict)
    partitions: int = 0


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


def _scan(state: JoinState, path: Path, kind: str) -> Iterator[dict]:
    log = state.logs.setdefault(kind, LogCounts(kind, str(path)))
    for number, record, bad in read_log(path, kind):
        log.lines = number
        if bad is not None:
            log.bad += 1
            if len(state.bad_lines) < MAX_BAD_LINES_SHOWN:
                state.bad_lines.append(bad)
            continue
        log.good += 1
        yield record  # type: ignore[misc]


def _join_partition(state: JoinState, index: int, exp: _Partitions, out: _Partitions, asg: _Partitions | None,
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
                        state.orphan_conversions += 1
                        _example(state.orphan_conversion_examples, f"{rid}/{item}")
            state.conversions_joined += conversions
            if clicks > len(items):
                state.over_clicked += 1
                _example(state.over_clicked_examples, f"{rid} ({clicks} clicks, {len(items)} items)")
        variant = assigned.get(rid)
        if variant is None:
            continue
        state.assigned_exposures += 1
        acc = state.variants.get(variant)
        if acc is None:
            acc = state.variants[variant] = VariantTotals(variant)
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


def _partition_exposures(state: JoinState, path: Path, work: Path, count: int) -> _Partitions:
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


def _partition_outcomes(state: JoinState, path: Path, work: Path, count: int) -> _Partitions:
    """Count the outcomes and write each, by request id, into its partition."""
    out = _Partitions(work, "outcome", count)
    with out:
        for rec in _scan(state, path, "outcome"):
            state.outcome_count += 1
            out.write(rec["request_id"], (rec["request_id"], rec["item_id"], rec["event_type"] == "click",
                                          float(rec.get("value", 0.0)), rec["ts"]))
    return out


def _partition_assignments(state: JoinState, path: Path, work: Path, count: int, experiment_id: str | None,
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


def join_logs(paths: Mapping[str, Path], experiment_id: str | None, slice_keys: list[str], *,
              workdir: str | os.PathLike[str] | None = None,
              partition_bytes: int = PARTITION_INPUT_BYTES) -> JoinState:
    """Stream, validate and join the logs (``exposure``, ``outcome`` and optionally ``assignment`` paths).

    Temporary partitions go under ``workdir`` (default: the system's temporary directory) and are removed
    afterwards. Each variant's ``latency_p95_ms`` is filled in.
    """
    state = JoinState()
    count = state.partitions = _partition_count(paths.values(), partition_bytes)
    with tempfile.TemporaryDirectory(prefix="recsys-eval-", dir=workdir) as tmp:
        work = Path(tmp)
        exp = _partition_exposures(state, paths["exposure"], work, count)
        out = _partition_outcomes(state, paths["outcome"], work, count)
        asg = None
        if "assignment" in paths:
            asg = _partition_assignments(state, paths["assignment"], work, count, experiment_id, slice_keys)
        latencies: dict[str, _Latencies] = {}
        try:
            with progress.stage("joining the logs", total=count, unit="partitions") as joined:
                for index in range(count):
                    _join_partition(state, index, exp, out, asg, latencies, work)
                    joined.advance()
        finally:
            for lat in latencies.values():
                lat.close()
        for name, acc in state.variants.items():
            acc.latency_p95_ms = latencies[name].p95()
    return state


def join_integrity(state: JoinState, experiment: bool) -> dict[str, Any]:
    """The join figures in the suite's ``data_quality.join_integrity`` names, and what we add to them."""
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
