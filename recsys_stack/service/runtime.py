"""What one running service holds (settings, admin store, artifact caches, metrics, catalog) and the request logic
that needs them; the HTTP layer in :mod:`app` only decodes, calls these and encodes."""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .adminstore import AdminStore, DatabaseUnavailable, DocumentNotFound, TenantNotFound
from .artifacts import ArtifactIncompatible, Artifacts, Signals, StoreUnavailable, TtlCache
from .documents import config_max_k, config_weights, served_rules
from .metrics import ServiceMetrics
from .problems import Problem, internal, invalid_request
from .ranking import Catalog, rank
from .recommend_request import RecommendRequest, parse_recommend_request, safe_segment
from .settings import Settings

ALGO_VERSION = "recsys-algo@local"
CACHE_TARGETS = ("config", "rules", "popularity")


def load_catalog() -> Catalog | None:
    """Item metadata from ``recsys_stack.catalog``; None (tag lookups fail, with a warning) if it is missing."""
    try:
        module = importlib.import_module("recsys_stack.catalog")
    except ImportError:
        return None
    return getattr(module, "BY_ID", None)


def actor_for(headers: Mapping[str, str], api_key: str) -> tuple[str, str]:
    """Who is acting, as the suite records it: the identity of the API key (``api-key:<id>``), whatever headers
    the client adds; the person is named in the client's own audit record."""
    return "api-key:" + hashlib.sha256(api_key.encode()).hexdigest()[:8], "api_key"


def header_text(headers: Mapping[str, str], name: str) -> str | None:
    """A header value read as UTF-8, as the suite reads it (the server hands us the bytes as Latin-1)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class ServiceRuntime:
    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.store = AdminStore(settings.db_path)
        self.artifacts = Artifacts(
            settings, on_failure=self.metrics.load_failed, on_manifest=self.metrics.manifest_loaded
        )
        # Config, rules and tenant lookups are cached like the manifest, so a change needs a TTL or an invalidation.
        self.documents = TtlCache(settings.manifest_ttl_seconds)
        self.catalog = catalog

    # -- auth and tenancy -----------------------------------------------------------------------------------------

    def check_api_key(self, headers: Mapping[str, str], *, required: bool) -> str | None:
        sent = headers.get("x-api-key")
        if not sent:
            if required:
                raise Problem(401, "RECSYS_AUTH_REQUIRED", "this endpoint needs an X-API-Key header")
            return None
        expected = self.settings.api_key
        if expected is None:
            if required:
                raise Problem(
                    403, "RECSYS_FORBIDDEN", "the admin API is disabled: start the service with RECSYS_API_KEY set"
                )
            return None
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Problem(401, "RECSYS_AUTH_INVALID", "the X-API-Key is not valid for this service")
        return sent

    def tenant_from_header(self, headers: Mapping[str, str]) -> str:
        tenant = header_text(headers, "x-org-id")
        if not tenant:
            raise invalid_request("the X-Org-Id header (tenant) is required")
        try:
            safe_segment(tenant, "X-Org-Id")
        except Problem as exc:
            raise invalid_request(exc.detail) from None
        return tenant

    def require_tenant(self, tenant: str, *, cached: bool) -> None:
        key = ("tenant", tenant)
        if cached and self.documents.get(key):
            return
        try:
            exists = self.store.tenant_exists(tenant)
        except DatabaseUnavailable as exc:
            raise internal(str(exc)) from exc
        if not exists:
            raise Problem(404, "RECSYS_TENANT_NOT_FOUND", f"tenant {tenant!r} does not exist")
        self.documents.put(key, True)

    def document(self, tenant: str, kind: str) -> tuple[Any, str]:
        """The served (cached) config or rules; (None, "") when the tenant has none."""
        key = (kind, tenant)
        cached = self.documents.get(key)
        if cached is not None:
            return cached
        try:
            value = self.store.get(tenant, kind)
        except DocumentNotFound:
            return None, ""
        except TenantNotFound as exc:
            raise Problem(404, "RECSYS_TENANT_NOT_FOUND", str(exc)) from exc
        except DatabaseUnavailable as exc:
            raise internal(str(exc)) from exc
        self.documents.put(key, value)
        return value

    # -- recommendations ------------------------------------------------------------------------------------------

    def _prepare(
        self, headers: Mapping[str, str], body: Any
    ) -> tuple[str, RecommendRequest, Any, str, Any, str, list[dict[str, str]], int]:
        self.check_api_key(headers, required=False)
        tenant = self.tenant_from_header(headers)
        self.require_tenant(tenant, cached=True)
        request = parse_recommend_request(body)
        config, config_version = self.document(tenant, "config")
        rules_doc, rules_version = self.document(tenant, "rules")
        warnings = [{"code": "DEFAULT_APPLIED", "detail": text} for text in request.defaults]
        k = request.k
        max_k = config_max_k(config)
        if k > max_k:
            k = max_k
            warnings.append({"code": "DEFAULT_APPLIED", "detail": f"k capped to the tenant's limits.max_k={max_k}"})
        return tenant, request, config, config_version, rules_doc, rules_version, warnings, k

    def _meta(
        self, tenant: str, request: RecommendRequest, config_version: str, rules_version: str, request_id: str
    ) -> dict[str, Any]:
        return {
            "tenant_id": tenant,
            "surface": request.surface,
            "segment": request.segment,
            "algo_version": ALGO_VERSION,
            "config_version": config_version,
            "rules_version": rules_version,
            "request_id": request_id,
        }

    def recommend(self, headers: Mapping[str, str], body: Any, request_id: str) -> dict[str, Any]:
        tenant, request, config, config_version, rules_doc, rules_version, warnings, k = self._prepare(headers, body)
        weights = config_weights(config)
        if request.weights:
            weights.update(request.weights)
        try:
            rules = served_rules(rules_doc)
        except ValueError as exc:
            # Stored rules were validated on PUT; a row edited behind the API's back must not break serving.
            rules = []
            warnings.append({"code": "SIGNAL_PARTIAL", "detail": f"rules ignored: {exc}"})
        wants_signal = weights.get("pop", 0) > 0 or (weights.get("cooc", 0) > 0 and bool(request.anchors))
        signals = Signals([], None, None, None)
        if self.settings.artifact_mode_enabled and wants_signal:
            signals = self._signals(tenant, request, want_cooc=weights.get("cooc", 0) > 0 and bool(request.anchors))
        ranking = rank(
            request,
            weights=weights,
            popularity=signals.popularity,
            cooc=signals.cooc,
            rules=rules,
            catalog=self.catalog,
            now=datetime.now(UTC),
            k=k,
            cooc_missing=signals.cooc_missing,
        )
        if not self.settings.artifact_mode_enabled and wants_signal:
            ranking.warn("SIGNAL_UNAVAILABLE", "artifact mode is disabled (RECSYS_ARTIFACT_MODE_ENABLED=false)")
        meta = self._meta(tenant, request, config_version, rules_version, request_id)
        meta["counts"] = {"returned": len(ranking.items)}
        response: dict[str, Any] = {"items": ranking.items, "meta": meta}
        warnings += ranking.warnings
        if warnings:
            response["warnings"] = warnings
        return response

    def _signals(self, tenant: str, request: RecommendRequest, *, want_cooc: bool) -> Signals:
        try:
            return self.artifacts.signals(tenant, request.surface, want_cooc=want_cooc)
        except ArtifactIncompatible as exc:
            raise Problem(422, "RECSYS_ARTIFACT_INCOMPATIBLE", str(exc)) from exc
        except StoreUnavailable as exc:
            raise internal(f"artifact store error: {exc}") from exc

    def validate(self, headers: Mapping[str, str], body: Any, request_id: str) -> dict[str, Any]:
        tenant, request, _config, config_version, _rules, rules_version, warnings, k = self._prepare(headers, body)
        normalized = request.normalized()
        normalized["k"] = k
        response: dict[str, Any] = {"normalized_request": normalized}
        if warnings:
            response["warnings"] = warnings
        response["meta"] = self._meta(tenant, request, config_version, rules_version, request_id)
        return response

    # -- caches ---------------------------------------------------------------------------------------------------

    def invalidate(self, tenant: str, targets: list[str], surface: str | None) -> dict[str, int]:
        counts: dict[str, int] = {}
        for target in targets:
            if target == "popularity":
                counts[target] = self.artifacts.invalidate(tenant, surface)
            else:
                counts[target] = self.documents.drop(lambda key, _v, t=target: key == (t, tenant))
        return counts
