"""Which surfaces are behind an alert.

The suite's metrics carry no tenant or surface label, so its alerts name the deployment, not a surface. The triage
finds the surfaces, by the kind of alert:

============================  =========================================================================================
``staleness`` (manifest age)   the fleet freshness scan (``recsys-checks freshness``): stale, missing or invalid
                               manifests; when it finds none, a probe of every published surface, whose
                               served-vs-published check sees a service serving an older version than the manifest
``serving`` (empty answers,    a probe of every published surface (``recsys-checks recs probe``): an empty or
error rate, latency)           failing answer
``artifacts`` (load failures)  the deep freshness scan (every blob validated) and a probe of every surface, narrowed
                               by the alert's ``kind`` label: a surface broken only for another kind is left out
``fleet`` (any other alert)    the deep scan and the probes, any failing signal
============================  =========================================================================================

A surface that could not be read (a probe that exited 2 or timed out, a manifest the scan could not reach, a surface
beyond ``--max-probes``) is *unknown*, never healthy: it is a suspect after the broken ones, and a triage that could
not list the fleet at all says so instead of "nothing found".
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .checks import DEFAULT_MAX_AGE, KINDS, ChecksCli, FleetScan, Probe, freshness_figure

TRIAGE_OF_ALERT = {
    "RecsysManifestStale": "staleness",
    "RecsysEmptyRecommendationsHigh": "serving",
    "RecsysHighErrorRate": "serving",
    "RecsysLatencyP95High": "serving",
    "RecsysArtifactLoadFailures": "artifacts",
}
PROBES_AT_ONCE = 4

# Lower is worse: what a client gets now, then a registry that cannot serve, then an old one, then the unknown.
RANK_SERVED = 0
RANK_INVALID = 1
RANK_STALE = 2
RANK_UNKNOWN = 3


@dataclass
class Suspect:
    tenant: str
    surface: str
    signals: list[str] = field(default_factory=list)
    rank: int = RANK_UNKNOWN
    age_seconds: int = 0
    unknown: bool = True

    def add(self, rank: int, signal: str, unknown: bool = False) -> None:
        self.signals.append(signal)
        if unknown:
            return
        self.rank = rank if self.unknown else min(self.rank, rank)
        self.unknown = False

    def sort_key(self) -> tuple:
        return (self.unknown, self.rank, -len(self.signals), -self.age_seconds, self.tenant, self.surface)

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "surface": self.surface, "state": "unknown" if self.unknown else "broken",
                "signals": self.signals[:10], "age_seconds": self.age_seconds}


@dataclass
class Triage:
    kind: str
    suspects: list[Suspect] = field(default_factory=list)  # worst first; the unknown last
    looked_at: int = 0
    unread: list[str] = field(default_factory=list)  # what could not be read, not tied to one surface
    summary: str = ""
    seconds: float = 0.0
    figure: dict[str, Any] | None = None  # the fleet's ages as a histogram (judge.figures), for a staleness alert

    @property
    def status(self) -> str:
        """``found`` (a surface is broken or unknown), ``inconclusive`` (the fleet could not be listed, or nothing
        was looked at) or ``nothing-found``."""
        if self.suspects:
            return "found"
        return "inconclusive" if self.unread or not self.looked_at else "nothing-found"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "looked_at": self.looked_at, "summary": self.summary,
                "unread": self.unread, "seconds": round(self.seconds, 3), "figure": self.figure,
                "broken": sum(not s.unknown for s in self.suspects),
                "unknown": sum(s.unknown for s in self.suspects),
                "suspects": [s.as_dict() for s in self.suspects[:200]]}


def triage_kind(alertname: str) -> str:
    return TRIAGE_OF_ALERT.get(alertname, "fleet")


@dataclass
class Observed:
    """What one triage read: the scan and the probes (shared by alerts of one kind within --triage-ttl)."""

    scan: FleetScan
    probes: dict[tuple[str, str], Probe]
    not_probed: list[tuple[str, str]]
    seconds: float
    not_probed_reason: str = "not probed: over --max-probes"


class Triager:
    def __init__(self, cli: ChecksCli, *, max_probes: int, ttl: float) -> None:
        self.cli = cli
        self.max_probes = max_probes
        self.ttl = ttl
        self._cache: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def triage(self, alertname: str, *, tenant: str | None = None, kind_label: str | None = None) -> Triage:
        kind = triage_kind(alertname)
        observed = await self._observe(kind, tenant)
        return judge(kind, observed, kind_label=kind_label, max_probes=self.max_probes)

    async def _observe(self, kind: str, tenant: str | None) -> Observed:
        key = (kind, tenant)
        now = time.monotonic()
        for k in [k for k, (at, fut) in self._cache.items() if fut.done() and now - at > self.ttl]:
            del self._cache[k]
        cached = self._cache.get(key)
        if cached is not None and (not cached[1].done() or now - cached[0] <= self.ttl):
            return await asyncio.shield(cached[1])
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._cache[key] = (now, future)
        try:
            observed = await self._read(kind, tenant)
        except BaseException as exc:
            self._cache.pop(key, None)
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        future.set_result(observed)
        self._cache[key] = (time.monotonic(), future)
        return observed

    async def _read(self, kind: str, tenant: str | None) -> Observed:
        started = time.monotonic()
        scan = await self.cli.freshness(deep=kind in ("artifacts", "fleet"), tenant=tenant)
        surfaces = sorted({(r["tenant"], r["surface"]) for r in scan.rows
                           if isinstance(r.get("tenant"), str) and isinstance(r.get("surface"), str)})
        probes: dict[tuple[str, str], Probe] = {}
        not_probed: list[tuple[str, str]] = []
        reason = f"not probed: over --max-probes ({self.max_probes})"
        need_probes = kind != "staleness" or not any(_freshness_rank(kind, r) is not None for r in scan.rows)
        if need_probes and surfaces:
            chosen, not_probed = surfaces[: self.max_probes], surfaces[self.max_probes:]
            gate = asyncio.Semaphore(PROBES_AT_ONCE)

            async def one(t: str, s: str) -> None:
                async with gate:
                    probes[(t, s)] = await self.cli.probe(t, s)

            # The probes together get a deadline too: three times one probe's (--triage-timeout).
            tasks = [asyncio.ensure_future(one(t, s)) for t, s in chosen]
            _, pending = await asyncio.wait(tasks, timeout=3 * self.cli.triage_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                late = [ts for ts in chosen if ts not in probes]
                not_probed += late
                reason = f"not probed within the triage's deadline ({3 * self.cli.triage_timeout:g} s)"
        return Observed(scan, probes, not_probed, time.monotonic() - started, reason)


def _freshness_rank(kind: str, row: dict[str, Any]) -> int | None:
    """The rank of a freshness row's failure for this kind of alert, None when it is not a signal of it."""
    if row.get("status") != "fail" or row.get("condition") == "unreachable":
        return None
    condition = row.get("condition")
    if kind == "serving":
        return None  # the scan only lists the surfaces; the probe is what a client gets
    if condition == "stale":
        return RANK_STALE if kind in ("staleness", "fleet") else None
    return RANK_INVALID


def _mentions(text: str, kind: str) -> bool:
    return re.search(rf"(?<![a-z_]){re.escape(kind)}(?![a-z_])", text) is not None


def judge(kind: str, observed: Observed, *, kind_label: str | None, max_probes: int) -> Triage:
    """Suspects from what was read, worst first."""
    out = Triage(kind=kind, seconds=observed.seconds)
    scan = observed.scan
    if scan.unread:
        out.unread.append(scan.unread)
    suspects: dict[tuple[str, str], Suspect] = {}

    def suspect(tenant: str, surface: str) -> Suspect:
        return suspects.setdefault((tenant, surface), Suspect(tenant, surface))

    looked = set()
    for row in scan.rows:
        tenant, surface = row.get("tenant"), row.get("surface")
        if not isinstance(tenant, str):
            continue
        if not isinstance(surface, str):  # a tenant-wide problem (its folder could not be listed)
            if row.get("status") == "fail":
                out.unread.append(str(row.get("summary") or f"{tenant}: {row.get('condition')}"))
            continue
        looked.add((tenant, surface))
        age = row.get("age_seconds") if isinstance(row.get("age_seconds"), int) else 0
        if row.get("condition") == "unreachable" and kind != "serving":
            s = suspect(tenant, surface)
            s.add(RANK_UNKNOWN, f"freshness: {row.get('summary')}", unknown=True)
            continue
        rank = _freshness_rank(kind, row)
        if rank is not None:
            s = suspect(tenant, surface)
            s.add(rank, f"freshness: {row.get('summary')}")
            s.age_seconds = max(s.age_seconds, age)
    for (tenant, surface), probe in observed.probes.items():
        looked.add((tenant, surface))
        if probe.outcome == "unread":
            suspect(tenant, surface).add(RANK_UNKNOWN, f"probe: could not look: {probe.message}", unknown=True)
            continue
        for name, check in probe.checks.items():
            if check.get("status") != "fail":
                continue
            if name == "recs.probe" and kind in ("serving", "artifacts", "fleet"):
                suspect(tenant, surface).add(RANK_SERVED, f"probe: {check['summary']}")
            elif name == "recs.served_vs_published" and kind in ("staleness", "fleet"):
                suspect(tenant, surface).add(RANK_STALE, f"served vs published: {check['summary']}")
    for tenant, surface in observed.not_probed:
        suspect(tenant, surface).add(RANK_UNKNOWN, observed.not_probed_reason, unknown=True)
    chosen = list(suspects.values())
    if kind == "artifacts" and kind_label:
        # A surface broken only for another kind is not this alert's; one whose failure names no kind (a manifest
        # that cannot be read fails every kind) or names this one is.
        def concerns(s: Suspect) -> bool:
            text = " ".join(s.signals)
            named = [k for k in KINDS if _mentions(text, k)]
            return s.unknown or not named or kind_label in named

        chosen = [s for s in chosen if concerns(s)]
    chosen.sort(key=Suspect.sort_key)
    out.suspects = chosen
    if kind == "staleness" and scan.rows:  # the scan ran with the default limit (no --max-age)
        out.figure = freshness_figure([r for r in scan.rows if isinstance(r.get("surface"), str)],
                                      max_age_seconds=int(DEFAULT_MAX_AGE.total_seconds()))
    out.looked_at = len(looked)
    broken = sum(not s.unknown for s in chosen)
    unknown = len(chosen) - broken
    what = {"staleness": "fleet freshness scan" + (" and probes" if observed.probes else ""),
            "serving": "probe of every published surface", "artifacts": "deep freshness scan and probes",
            "fleet": "deep freshness scan and probes"}[kind]
    out.summary = (f"{what}: {out.looked_at} surface(s) looked at, {broken} broken, {unknown} unknown"
                   + (f" (kind {kind_label})" if kind == "artifacts" and kind_label else "")
                   + (f"; could not read: {'; '.join(out.unread)[:300]}" if out.unread else ""))
    return out
