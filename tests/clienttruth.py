"""What a client of a running local stack gets, judged without ``recsys_checks``: the oracle of the incident tests.

Plain ``httpx`` requests to the service (every request shape a surface is used with: without anchors, with anchors
— an item of the co-occurrence artifact —, at ``k``, for each segment the artifacts name), the store's raw objects
read as files, and the tenant's admin documents read from the admin API directly. Nothing here imports
``recsys_checks``: a bug shared by the runbooks and their oracle would pass every test.

Three kinds of trouble, kept apart:

- **hurt**: what clients get is wrong now. A shape errors or times out; an item served is in no current artifact;
  an item is served twice; fewer distinct items than asked while the catalog less what active block rules hide has
  more; a blocked item is served.
- **stale**: the data window ended longer ago than :data:`STALE_AFTER`. A rollback may leave this as a follow-up, so
  it is never counted as hurt.
- **at risk**: clients are served, but the tenant's documents break the suite's contract (a rules document that is
  not the list of rules, a config key outside the suite's schema) or active block rules hide more than half of the
  published catalog. The design calls each of these a finding; the runbooks must report them, not call them healthy.

Each kind of hurt names the symptom an engineer sees (:data:`SYMPTOMS`), which picks the runbook the first-incident
checklist opens for it (:func:`runbooks_for`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from recsys_stack.catalog import ITEMS

K = 10
# A daily window ends at 00:00 UTC and is published early the next morning: at most about 26 h old until the next
# publish; beyond 32 h a day was missed.
STALE_AFTER = timedelta(hours=32)
# The design's rule: rules hiding more than half of what a surface could serve are an outage in the making.
MOST = 0.5
TIMEOUT = 8.0
MAX_BLOB_BYTES = 10_000_000
SUITE_CONFIG_KEYS = {"weights", "flags", "limits", "algo"}
CATALOG = {item["item_id"]: item for item in ITEMS}

# The symptom each kind of hurt shows, and the runbook the first-incident checklist opens for it.
SYMPTOMS = {"errors": "service-not-ready", "short": "empty-recs", "wrong": "rollback-config-rules",
            "at_risk": "rollback-config-rules", "shrunk": "rollback-manifest", "stale": "stale-manifest"}
# The design's rule for a build: one that lost more than half the distinct items of the version before it is broken
# (below MIN_ITEMS_FOR_DROP items the counts are too small to judge).
MIN_ITEMS_FOR_DROP = 20
QUIET_RUNBOOKS = ("empty-recs", "rollback-config-rules", "service-not-ready")


@dataclass
class RawStack:
    """A running file-store stack seen from outside: its root and the environment a client of it has."""

    root: Path
    env: dict[str, str]
    transport: httpx.BaseTransport | None = None  # the oracle's own tests answer in place of the service

    def http(self, method: str, path: str, tenant: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.env["RECSYS_API_KEY"], "X-Org-Id": tenant}
        with httpx.Client(base_url=self.env["RECSYS_BASE_URL"], timeout=TIMEOUT, trust_env=False,
                          transport=self.transport) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def key_path(self, key: str) -> Path:
        return self.root / "store" / key

    def manifest(self, tenant: str, surface: str) -> dict[str, Any] | None:
        return read_json(self.key_path(f"registry/current/{tenant}/{surface}/manifest.json"))

    def blob(self, uri: str) -> dict[str, Any] | None:
        return read_json(Path(uri.removeprefix("file://"))) if uri.startswith("file://") else None

    def document(self, tenant: str, kind: str) -> Any:
        answer = self.http("GET", f"/v1/admin/tenants/{tenant}/{kind}", tenant)
        return answer.json()[kind] if answer.status_code == 200 else None


def read_json(path: Path) -> Any:
    """The JSON object at ``path``, or ``None`` when it is not a readable regular file of JSON (a FIFO is never
    opened: a reader would wait for a writer)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BLOB_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class Truth:
    """What clients of one surface get, and what is wrong with it."""

    hurt: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    at_risk: list[str] = field(default_factory=list)
    symptoms: set[str] = field(default_factory=set)
    shapes: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not (self.hurt or self.stale or self.at_risk)

    def add(self, symptom: str, why: str) -> None:
        self.symptoms.add(symptom)
        {"stale": self.stale, "at_risk": self.at_risk, "shrunk": self.at_risk}.get(symptom, self.hurt).append(why)

    def __str__(self) -> str:
        parts = [f"{name}: {'; '.join(found)}" for name, found in
                 (("hurt", self.hurt), ("stale", self.stale), ("at risk", self.at_risk)) if found]
        return " | ".join(parts) or "healthy"


def runbooks_for(truth: Truth) -> list[str]:
    """The runbooks the first-incident checklist opens for what clients see, most urgent first."""
    return list(dict.fromkeys(SYMPTOMS[s] for s in ("errors", "short", "wrong", "at_risk", "shrunk", "stale")
                              if s in truth.symptoms))


@dataclass
class Published:
    items: set[str] = field(default_factory=set)  # every item a current artifact holds
    popularity: list[str] = field(default_factory=list)
    cooc: dict[str, list[str]] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    window_end: str | None = None


def published(stack: RawStack, tenant: str, surface: str) -> Published:
    """What the current manifest's artifacts hold, read as raw files (what cannot be read holds nothing)."""
    out = Published()
    manifest = stack.manifest(tenant, surface) or {}
    current = manifest.get("current") if isinstance(manifest.get("current"), dict) else {}
    for kind, uri in sorted(current.items()):
        blob = stack.blob(str(uri)) or {}
        rows = blob.get("neighbors" if kind == "cooc" else "items")
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or not isinstance(row.get("item_id"), str):
                continue
            out.items.add(row["item_id"])
            inner = [i["item_id"] for i in row.get("items") or [] if isinstance(i, dict) and "item_id" in i]
            out.items.update(inner)
            if kind == "popularity":
                out.popularity.append(row["item_id"])
            if kind == "cooc" and inner:
                out.cooc[row["item_id"]] = inner
        segment = blob.get("segment")
        if isinstance(segment, str) and segment not in ("", "default") and segment not in out.segments:
            out.segments.append(segment)
        if kind == "popularity" and isinstance(blob.get("window"), dict):
            out.window_end = blob["window"].get("end")
    return out


def intended_rules(doc: Any) -> tuple[list[dict[str, Any]], bool]:
    """The rules the operator meant, and whether the document is the raw list the service applies. A document
    wrapped as ``{"rules": [...]}`` still says what was meant: its blocks are the operator's intent."""
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)], True
    if isinstance(doc, dict) and isinstance(doc.get("rules"), list):
        return [r for r in doc["rules"] if isinstance(r, dict)], False
    return [], doc is None


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def in_force(rule: dict[str, Any], surface: str, segment: str, now: datetime) -> bool:
    if rule.get("enabled", True) is not True:
        return False
    if rule.get("surface") not in (None, surface) or rule.get("segment") not in (None, segment):
        return False
    start, end = _when(rule.get("valid_from")), _when(rule.get("valid_until"))
    return (start is None or start <= now) and (end is None or now < end)


def targets(rule: dict[str, Any]) -> set[str]:
    """The catalog items (or ids) a rule names."""
    kind = rule.get("target_type", "item")
    if kind == "item":
        return set(rule.get("item_ids") or ([rule["target_key"]] if rule.get("target_key") else []))
    key = rule.get("target_key")
    if kind == "tag":
        return {i for i, meta in CATALOG.items() if key in meta["tags"]}
    return {i for i, meta in CATALOG.items() if meta.get(kind) == key}


def blocked(rules: list[dict[str, Any]], surface: str, segment: str, now: datetime) -> set[str]:
    return {i for r in rules if r.get("action") == "block" and in_force(r, surface, segment, now) for i in targets(r)}


def anchor_of(pub: Published) -> str:
    """The item an item page of the surface shows: the most popular item with co-occurrence neighbours (an item of
    the cooc artifact), else the first item of the catalog."""
    for item in pub.popularity:
        if item in pub.cooc:
            return item
    return min(pub.cooc) if pub.cooc else min(CATALOG)


def shapes(surface: str, pub: Published, k: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for segment in ["", *pub.segments]:
        extra = {"segment": segment} if segment else {}
        base = {"surface": surface, "k": k, "user": {"user_id": "client-truth"}, **extra}
        out.append((f"plain{'@' + segment if segment else ''}", base))
        out.append((f"anchors{'@' + segment if segment else ''}",
                    {**base, "anchors": {"item_ids": [anchor_of(pub)]}}))
    return out


def client_truth(stack: RawStack, tenant: str, surface: str, *, k: int = K, now: datetime | None = None) -> Truth:
    """What the clients of ``tenant``/``surface`` get, judged as the module docstring says."""
    now = now or datetime.now(UTC)
    truth = Truth()
    pub = published(stack, tenant, surface)
    rules, applied = intended_rules(stack.document(tenant, "rules"))
    for shape, body in shapes(surface, pub, k):
        _judge(stack, tenant, surface, shape, body, pub, rules, truth, now)
    _judge_documents(stack, tenant, surface, pub, rules, applied, truth, now)
    _judge_builds(stack, tenant, surface, truth)
    end = _when(pub.window_end) if pub.window_end else None
    if end is not None and now - end > STALE_AFTER:
        truth.add("stale", f"the data window ended {pub.window_end}, {(now - end) / timedelta(hours=1):.0f} h ago")
    return truth


def _judge(stack: RawStack, tenant: str, surface: str, shape: str, body: dict[str, Any], pub: Published,
           rules: list[dict[str, Any]], truth: Truth, now: datetime) -> None:
    try:
        answer = stack.http("POST", "/v1/recommend", tenant, json=body)
    except httpx.HTTPError as exc:
        truth.shapes[shape] = type(exc).__name__
        truth.add("errors", f"{shape} requests fail ({type(exc).__name__})")
        return
    truth.shapes[shape] = answer.status_code
    if answer.status_code != 200:
        truth.add("errors", f"{shape} requests answer {answer.status_code}")
        return
    items = [i.get("item_id") for i in answer.json().get("items") or []]
    truth.shapes[shape] = items
    hidden = blocked(rules, surface, body.get("segment") or "default", now)
    if unknown := sorted({str(i) for i in items if i not in pub.items}):
        truth.add("wrong", f"{shape} serves {unknown[:4]}, in no current artifact")
    if twice := sorted({str(i) for i in items if items.count(i) > 1}):
        truth.add("wrong", f"{shape} serves {twice[:4]} more than once")
    if served_blocked := sorted({str(i) for i in items if i in hidden}):
        truth.add("wrong", f"{shape} serves {served_blocked[:4]}, which block rules hide")
    available = len(set(CATALOG) - hidden)
    k = int(body["k"])
    if len(set(items)) < min(k, available):
        truth.add("short", f"{shape} gets {len(set(items))} distinct items of {k} asked (the catalog less what "
                  f"blocks hide has {available})")


def _judge_documents(stack: RawStack, tenant: str, surface: str, pub: Published, rules: list[dict[str, Any]],
                     applied: bool, truth: Truth, now: datetime) -> None:
    if not applied:
        truth.add("at_risk", "the rules document is not the list of rules: no rule of it is in force")
    config = stack.document(tenant, "config")
    if isinstance(config, dict) and (extra := sorted(set(config) - SUITE_CONFIG_KEYS)):
        truth.add("at_risk", f"config keys {extra} are outside the suite's schema")
    catalog = set(pub.popularity)
    hidden = catalog & blocked(rules, surface, "default", now)
    if catalog and len(hidden) > MOST * len(catalog):
        truth.add("at_risk", f"block rules hide {len(hidden)} of the {len(catalog)} published items")


def _distinct(blob: dict[str, Any] | None, kind: str) -> int | None:
    rows = (blob or {}).get("neighbors" if kind == "cooc" else "items")
    if not isinstance(rows, list):
        return None
    ids = {r.get("item_id") for r in rows if isinstance(r, dict)}
    ids |= {i.get("item_id") for r in rows if isinstance(r, dict) for i in r.get("items") or [] if isinstance(i, dict)}
    return len(ids - {None})


def _judge_builds(stack: RawStack, tenant: str, surface: str, truth: Truth) -> None:
    """A current artifact that lost more than half the distinct items of the version built before it."""
    current = (stack.manifest(tenant, surface) or {}).get("current") or {}
    for kind, uri in sorted(current.items()) if isinstance(current, dict) else []:
        folder = stack.key_path(f"registry/records/{tenant}/{surface}/{kind}")
        records = [r for r in (read_json(p) for p in folder.glob("*.json")) if r]
        mine = next((r for r in records if r.get("URI") == uri), None)
        before = sorted((r for r in records if mine and str(r.get("BuiltAt")) < str(mine.get("BuiltAt"))),
                        key=lambda r: str(r.get("BuiltAt")))
        now_n = _distinct(stack.blob(str(uri)), kind)
        then_n = _distinct(stack.blob(str(before[-1]["URI"])), kind) if before else None
        if now_n is not None and then_n is not None and then_n >= MIN_ITEMS_FOR_DROP and now_n < then_n / 2:
            truth.add("shrunk", f"the {kind} artifact holds {now_n} items where the build before it held {then_n}")
