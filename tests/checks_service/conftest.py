"""A faithful in-memory recsys-service behind ``httpx.MockTransport``: no network in these tests.

It keeps the service's observable behaviour: problem+json errors with codes and request ids, admin documents with
bare-hex ETags and ``If-Match`` (409 on mismatch, no-op re-PUT, audited changes), a keyset-paginated audit log,
caches that keep serving the old popularity artifact / document version until invalidated, and scoring as
``w_pop * count`` with block/pin/boost rules.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from recsys_checks.judge.registry.published import ManifestState, PublishedVersion
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target

API_KEY = "sk-test-0123456789abcdef-SECRET"
BASE_URL = "http://recsys.test:8080"
CLOCK_START = datetime(2026, 1, 10, 0, 0, tzinfo=UTC)


def canonical(value: Any) -> str:
    """The service's canonical jsonb text, written independently of recsys_checks.judge.serving.documents."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + canonical(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(canonical(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def version_of(doc: Any) -> str:
    return hashlib.sha256(canonical(doc).encode()).hexdigest()


def popularity(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    items = [{"item_id": i, "count": c} for i, c in pairs]
    return sorted(items, key=lambda x: (-x["count"], x["item_id"]))


POP_V1 = popularity(("sku-0001", 50), ("sku-0002", 40), ("sku-0003", 30), ("sku-0004", 20), ("sku-0005", 10))
POP_V2 = popularity(("sku-0003", 90), ("sku-0006", 70), ("sku-0001", 55), ("sku-0002", 45), ("sku-0007", 5))
V1, V2 = "a1" * 32, "b2" * 32
CONFIG_SEED = {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "flags": {}, "limits": {"max_k": 200},
               "algo": "popularity"}


def problem(status: int, code: str, detail: str, request_id: str | None) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": detail, "instance": "/", "code": code,
            "request_id": request_id}
    headers = {"Content-Type": "application/problem+json"}
    if request_id:
        headers["X-Request-Id"] = request_id
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


class FakeService:
    """State and HTTP behaviour of one service deployment (tenant ``demo``)."""

    def __init__(self) -> None:
        self.api_key = API_KEY
        self.tenants = {"demo"}
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}  # (tenant, kind) -> {version: doc}
        self.current: dict[tuple[str, str], str] = {}
        self.cached: dict[tuple[str, str], str] = {}  # document version the ranking uses until invalidated
        self.audit_log: list[dict[str, Any]] = []
        self.clock = CLOCK_START
        self.published: dict[str, list[dict[str, Any]]] = {"home": copy.deepcopy(POP_V1)}
        self.served: dict[str, list[dict[str, Any]]] = {"home": copy.deepcopy(POP_V1)}
        self.recommend_problem: tuple[int, str, str] | None = None
        self.live, self.ready = 200, 200
        self.checks: dict[str, Any] = {"objectstore": {"status": "ok"}, "admin_db": {"status": "ok"}}
        self.detailed = True
        self.down: Exception | None = None
        self.requests: list[httpx.Request] = []
        self.before_put: Callable[[], None] | None = None
        self.metrics_text = (
            "# HELP recsys_recommendation_requests_total Requests\n"
            "# TYPE recsys_recommendation_requests_total counter\n"
            'recsys_recommendation_requests_total{endpoint="recommend",outcome="ok",empty="false"} 90\n'
            'recsys_recommendation_requests_total{endpoint="recommend",outcome="ok",empty="true"} 7\n'
            'recsys_recommendation_requests_total{endpoint="recommend",outcome="error",empty="false"} 3\n'
            'recsys_artifact_load_failures_total{kind="popularity"} 2\n'
            "recsys_artifact_manifest_age_seconds 120\n"
        )
        self.seed("config", CONFIG_SEED)
        self.seed("rules", [])

    # -- state helpers --

    def tick(self) -> str:
        self.clock += timedelta(minutes=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def seed(self, kind: str, doc: Any, tenant: str = "demo") -> str:
        return self.write(tenant, kind, doc, actor_sub="recsys-stack", actor_type="system", request_id=None)

    def write(self, tenant: str, kind: str, doc: Any, *, actor_sub: str, actor_type: str,
              request_id: str | None) -> str:
        version = version_of(doc)
        key = (tenant, kind)
        before_version = self.current.get(key)
        if before_version == version:
            return version
        self.docs.setdefault(key, {})[version] = copy.deepcopy(doc)
        self.current[key] = version
        self.cached.setdefault(key, version)  # later writes are served only after an invalidation
        self.audit_log.append({
            "id": len(self.audit_log) + 1, "occurred_at": self.tick(), "tenant_id": tenant, "actor_sub": actor_sub,
            "actor_type": actor_type, "action": f"{kind}.update", "entity_type": kind, "entity_id": tenant,
            "request_id": request_id,
            "before_state": copy.deepcopy(self.docs[key][before_version]) if before_version else None,
            "after_state": copy.deepcopy(doc), "extra": {},
        })
        return version

    def doc(self, kind: str, tenant: str = "demo") -> Any:
        return self.docs[(tenant, kind)][self.current[(tenant, kind)]]

    def snapshot(self) -> str:
        return json.dumps({"docs": {f"{k[0]}/{k[1]}": v for k, v in self.docs.items()},
                           "current": {f"{k[0]}/{k[1]}": v for k, v in self.current.items()},
                           "cached": {f"{k[0]}/{k[1]}": v for k, v in self.cached.items()},
                           "audit": self.audit_log, "served": self.served}, sort_keys=True)

    def mutating_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method in ("PUT", "POST") and "/admin/" in r.url.path]

    # -- HTTP --

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down is not None:
            raise self.down
        self.requests.append(request)
        rid = request.headers.get("X-Request-Id")
        path = request.url.path
        plain = {"X-Request-Id": rid} if rid else {}
        if path == "/healthz":
            return httpx.Response(self.live, json={"status": "ok" if self.live == 200 else "fail"}, headers=plain)
        if path == "/readyz":
            return httpx.Response(self.ready, json={"status": "ready" if self.ready == 200 else "not_ready"},
                                  headers=plain)
        if path == "/health/detailed" and not self.detailed:
            return problem(404, "RECSYS_NOT_FOUND", "no such route", rid)
        if path in ("/health/detailed", "/health"):
            overall = "ok" if all(c.get("status") == "ok" for c in self.checks.values()) else "degraded"
            return httpx.Response(200, json={"status": overall, "checks": self.checks}, headers=plain)
        if path == "/metrics":
            return httpx.Response(200, text=self.metrics_text, headers={"Content-Type": "text/plain; version=0.0.4"})
        if path in ("/v1/recommend", "/v1/recommend/validate"):
            return self.recommend(request, validate=path.endswith("/validate"))
        if path.startswith("/v1/admin/tenants/"):
            return self.admin(request)
        return problem(404, "RECSYS_NOT_FOUND", f"no route {path}", rid)

    def _tenant(self, request: httpx.Request) -> str | None:
        return request.headers.get("X-Org-Id")

    def recommend(self, request: httpx.Request, *, validate: bool) -> httpx.Response:
        rid = request.headers.get("X-Request-Id")
        tenant = self._tenant(request)
        if tenant not in self.tenants:
            return problem(404, "RECSYS_TENANT_NOT_FOUND", f"tenant {tenant!r} not found", rid)
        body = json.loads(request.content)
        allowed = {"surface", "k", "user", "segment", "anchors", "candidates", "constraints", "weights", "options",
                   "experiment"}
        if set(body) - allowed:
            return problem(400, "RECSYS_INVALID_REQUEST", f"unknown fields {sorted(set(body) - allowed)}", rid)
        warnings: list[dict[str, str]] = []
        if "k" not in body:
            warnings.append({"code": "DEFAULT_APPLIED", "detail": "k defaulted to 20"})
        meta = {"tenant_id": tenant, "surface": body["surface"], "segment": "default",
                "algo_version": "recsys-algo@local", "config_version": self.cached[(tenant, "config")],
                "rules_version": self.cached[(tenant, "rules")], "request_id": rid}
        if validate:
            return httpx.Response(200, json={"normalized_request": {**body, "k": body.get("k", 20)},
                                             "meta": meta, **({"warnings": warnings} if warnings else {})})
        if self.recommend_problem:
            status, code, detail = self.recommend_problem
            return problem(status, code, detail, rid)
        config = self.docs[(tenant, "config")][self.cached[(tenant, "config")]]
        rules = self.docs[(tenant, "rules")][self.cached[(tenant, "rules")]]
        w_pop = float(config.get("weights", {}).get("pop", 0))
        w_cooc = float(config.get("weights", {}).get("cooc", 0))
        items: list[dict[str, Any]] = []
        if w_pop == 0 and (w_cooc == 0 or not body.get("anchors")):
            warnings.append({"code": "SIGNAL_UNAVAILABLE", "detail": "no signal has a non-zero weight"})
        else:
            scored = {i["item_id"]: w_pop * i["count"] for i in self.served.get(body["surface"], [])}
            pins: list[str] = []
            for rule in rules:
                if rule.get("enabled") is False or rule.get("surface") not in (None, body["surface"]):
                    continue
                ids = rule.get("item_ids") or []
                if rule["action"] == "block":
                    for i in ids:
                        scored.pop(i, None)
                elif rule["action"] == "boost":
                    for i in ids:
                        if i in scored:
                            scored[i] += rule.get("boost_value", 0)
                elif rule["action"] == "pin":
                    pins += [i for i in ids if i not in pins]
            ranked = [(i, scored.pop(i, 0.0)) for i in pins]
            if pins:
                warnings.append({"code": "RULE_PIN_INJECTED", "detail": "pinned " + ", ".join(pins)})
            ranked += sorted(scored.items(), key=lambda x: (-x[1], x[0]))
            items = [{"item_id": i, "rank": n + 1, "score": s} for n, (i, s) in enumerate(ranked[: body.get("k", 20)])]
        meta["counts"] = {"returned": len(items)}
        out: dict[str, Any] = {"items": items, "meta": meta}
        if warnings:
            out["warnings"] = warnings
        return httpx.Response(200, json=out, headers={"X-Request-Id": rid} if rid else {})

    def admin(self, request: httpx.Request) -> httpx.Response:
        rid = request.headers.get("X-Request-Id")
        key = request.headers.get("X-API-Key")
        if key is None:
            return problem(401, "RECSYS_AUTH_REQUIRED", "X-API-Key is required", rid)
        if key != self.api_key:
            return problem(401, "RECSYS_AUTH_INVALID", "the API key is not valid", rid)
        parts = request.url.path.split("/")  # ['', 'v1', 'admin', 'tenants', T, what, ...]
        tenant, what = parts[4], parts[5]
        if tenant not in self.tenants:
            return problem(404, "RECSYS_TENANT_NOT_FOUND", f"tenant {tenant!r} not found", rid)
        actor_sub = request.headers.get("X-Actor") or "api-key:" + hashlib.sha256(key.encode()).hexdigest()[:8]
        actor_type = "user" if request.headers.get("X-Actor") else "api_key"
        if what in ("config", "rules") and request.method == "GET":
            version = self.current[(tenant, what)]
            return httpx.Response(200, json={"tenant_id": tenant, f"{what}_version": version, what: self.doc(what)},
                                  headers={"ETag": version})
        if what in ("config", "rules") and request.method == "PUT":
            if self.before_put:
                self.before_put()
            if not request.content.strip():  # the body is the document itself, as the suite takes it
                return problem(400, f"RECSYS_INVALID_{what.upper()}", "the body is empty", rid)
            doc = json.loads(request.content)
            if_match = request.headers.get("If-Match")
            if if_match is not None and if_match != self.current[(tenant, what)]:
                return problem(409, "RECSYS_VERSION_MISMATCH", f"If-Match {if_match} is not the current version", rid)
            version = self.write(tenant, what, doc, actor_sub=actor_sub, actor_type=actor_type, request_id=rid)
            return httpx.Response(200, json={"tenant_id": tenant, f"{what}_version": version, what: doc},
                                  headers={"ETag": version})
        if what == "audit":
            return self.audit(request, tenant)
        if what == "cache" and request.method == "POST":
            body = json.loads(request.content)
            targets = body.get("targets") or []
            if not targets:
                return problem(400, "RECSYS_INVALID_TARGETS", "targets must not be empty", rid)
            if set(targets) - {"config", "rules", "popularity"}:
                return problem(422, "RECSYS_INVALID_TARGETS", f"unknown targets {targets}", rid)
            surface = body.get("surface")
            counts = {}
            for t in targets:
                if t == "popularity":
                    surfaces = [surface] if surface else list(self.published)
                    for s in surfaces:
                        self.served[s] = copy.deepcopy(self.published.get(s, []))
                    counts[t] = len(surfaces)
                else:
                    self.cached[(tenant, t)] = self.current[(tenant, t)]
                    counts[t] = 1
            self.audit_log.append({
                "id": len(self.audit_log) + 1, "occurred_at": self.tick(), "tenant_id": tenant, "actor_sub": actor_sub,
                "actor_type": actor_type, "action": "cache.invalidate", "entity_type": "cache", "entity_id": tenant,
                "request_id": rid, "before_state": None, "after_state": None,
                "extra": {"targets": targets, "surface": surface, "invalidated": counts},
            })
            return httpx.Response(200, json={"tenant_id": tenant, "targets": targets, "surface": surface,
                                             "status": "applied", "invalidated": counts})
        return problem(404, "RECSYS_NOT_FOUND", "no such admin route", rid)

    def audit(self, request: httpx.Request, tenant: str) -> httpx.Response:
        limit = min(int(request.url.params.get("limit", 100)), 200)
        before = request.url.params.get("before")
        before_id = request.url.params.get("before_id")
        entries = sorted((e for e in self.audit_log if e["tenant_id"] == tenant),
                         key=lambda e: (e["occurred_at"], e["id"]), reverse=True)
        if before is not None:
            entries = [e for e in entries if (e["occurred_at"], e["id"]) < (before, int(before_id or 0))]
        page = entries[:limit]
        body: dict[str, Any] = {"tenant_id": tenant, "entries": copy.deepcopy(page)}
        if len(entries) > limit:
            body["next_before"], body["next_before_id"] = page[-1]["occurred_at"], page[-1]["id"]
        return httpx.Response(200, json=body)


@pytest.fixture
def service() -> FakeService:
    """A fresh fake service for tenant demo: seeded config, empty rules, popularity v1 published and served."""
    return FakeService()


@pytest.fixture
def target(tmp_path) -> Target:
    """A target pointing at the fake service, with an API key; its registry (for audit records) is a temp dir."""
    template = (tmp_path / "registry").as_uri() + "/current/{tenant}/{surface}/manifest.json"
    return Target(base_url=BASE_URL, manifest_template=template, api_key=API_KEY)


@pytest.fixture
def client(service: FakeService, target: Target) -> Iterator[ServiceClient]:
    """A ServiceClient wired to the fake service through httpx.MockTransport (closed after the test)."""
    with ServiceClient(target, transport=httpx.MockTransport(service.handler)) as c:
        yield c


@pytest.fixture
def manifest_of(service: FakeService) -> Callable[..., Callable[[Target, str, str], ManifestState]]:
    """Build a manifest reader; by default it reports what the fake's registry publishes for the surface."""

    def make(state: str = "ok", *, version: str = V1, updated_at: str | None = None,
             items: list[dict[str, Any]] | None = None) -> Callable[[Target, str, str], ManifestState]:
        def reader(target: Target, tenant: str, surface: str) -> ManifestState:
            published = items if items is not None else service.published.get(surface, [])
            return ManifestState(
                state=state,
                detail=f"{state} for {tenant}/{surface}",
                etag='"etag-1"',
                updated_at=updated_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                uri=f"file:///reg/objectstore/{tenant}/{surface}/popularity/{version}.json",
                version=version,
                items=copy.deepcopy(published) if state in ("ok", "empty") else None,
            )

        return reader

    return make


@pytest.fixture
def history_of() -> Callable[..., Callable[[Target, str, str], list[PublishedVersion]]]:
    """Build a history reader over given (version, items) pairs, newest first."""

    def make(*versions: tuple[str, list[dict[str, Any]]]) -> Callable[[Target, str, str], list[PublishedVersion]]:
        def reader(target: Target, tenant: str, surface: str) -> list[PublishedVersion]:
            return [PublishedVersion(version=v, uri=f"file:///reg/{v}.json", items=copy.deepcopy(i))
                    for v, i in versions]

        return reader

    return make


# A config change that zeroes every weight: the service answers SIGNAL_UNAVAILABLE.
BAD_CONFIG = {**CONFIG_SEED, "weights": {"pop": 0.0, "cooc": 0.0, "emb": 0.0}}


@pytest.fixture
def bad_config(service):
    """The fake after a bad config change (weights zeroed), applied and invalidated as an operator would."""
    service.write("demo", "config", BAD_CONFIG, actor_sub="alice", actor_type="user", request_id="req-bad")
    service.cached[("demo", "config")] = service.current[("demo", "config")]
    return service
