"""Prometheus metrics with the suite's names (namespace ``recsys``, no tenant labels), one registry per app.

``recsys_recommendation_requests_total`` has ``endpoint`` (recommend | validate), ``outcome`` (success |
client_error | server_error) and ``empty`` ("true" when a successful response had no items).
``recsys_artifact_manifest_age_seconds`` is the age of the oldest manifest the service currently knows (NaN before
the first load); ``recsys_artifact_manifest_artifacts`` is the number of artifacts in the last loaded manifest.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .artifacts import Manifest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ARTIFACT_KINDS = ("manifest", "popularity", "cooc")


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recsys_recommendation_requests",
            "Recommendation requests by endpoint, outcome and whether the result was empty.",
            ["endpoint", "outcome", "empty"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recsys_recommendation_latency_seconds",
            "Time to answer a recommendation request.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.load_failures = Counter(
            "recsys_artifact_load_failures",
            "Manifest or artifact loads that failed (missing, incompatible or store unavailable).",
            ["kind"],
            registry=self.registry,
        )
        for kind in ARTIFACT_KINDS:
            self.load_failures.labels(kind=kind)
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._last: Manifest | None = None
        self._lock = threading.Lock()
        age = Gauge(
            "recsys_artifact_manifest_age_seconds",
            "Age (now - updated_at) of the oldest manifest the service has loaded.",
            registry=self.registry,
        )
        age.set_function(self._max_age)
        artifacts = Gauge(
            "recsys_artifact_manifest_artifacts",
            "Number of artifacts in the last loaded manifest.",
            registry=self.registry,
        )
        artifacts.set_function(lambda: float(len(self._last.current)) if self._last is not None else 0.0)

    def observe_request(self, endpoint: str, status: int, empty: bool, seconds: float) -> None:
        outcome = "success" if status < 400 else "client_error" if status < 500 else "server_error"
        self.requests.labels(
            endpoint=endpoint, outcome=outcome, empty="true" if (empty and status < 400) else "false"
        ).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def load_failed(self, kind: str) -> None:
        self.load_failures.labels(kind=kind).inc()

    def manifest_loaded(self, manifest: Manifest) -> None:
        with self._lock:
            self._manifests[(manifest.tenant, manifest.surface)] = manifest
            self._last = manifest

    def _max_age(self) -> float:
        now = datetime.now(UTC)
        with self._lock:
            ages = [a for m in self._manifests.values() if (a := m.age_seconds(now)) is not None]
        return max(ages) if ages else math.nan

    def render(self) -> bytes:
        return generate_latest(self.registry)
