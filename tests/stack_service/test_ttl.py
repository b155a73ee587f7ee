"""TTL expiry: with a short manifest and cache TTL a new publish or config is served without an invalidation."""

from __future__ import annotations

import time

import pytest
from stack_service.servicekit import file_service

pytestmark = pytest.mark.stack

TTL = 2.0  # wide enough that a busy machine still asks twice within it


def test_new_manifest_and_config_are_served_after_the_ttl(tmp_path):
    """Old results are served while the caches are fresh, new ones once the TTL has passed."""
    with file_service(tmp_path, manifest_ttl_seconds=TTL, cache_ttl_seconds=TTL) as service, service.client() as http:
        tenant = service.new_tenant()
        service.publish(tenant, "home", [("sku-0001", 5)])
        service.admin.put(tenant, "config", {"weights": {"pop": 1.0}}, actor_sub="t", actor_type="system")
        first = service.recommend(http, tenant).json()
        service.publish(tenant, "home", [("sku-0002", 9)])
        new_version, _ = service.admin.put(
            tenant, "config", {"weights": {"pop": 3.0}}, actor_sub="t", actor_type="system"
        )
        cached = service.recommend(http, tenant).json()
        assert cached["items"] == first["items"] == [{"item_id": "sku-0001", "rank": 1, "score": 5}]
        assert cached["meta"]["config_version"] == first["meta"]["config_version"] != new_version
        time.sleep(TTL + 0.3)
        fresh = service.recommend(http, tenant).json()
        assert fresh["items"] == [{"item_id": "sku-0002", "rank": 1, "score": 27}]
        assert fresh["meta"]["config_version"] == new_version
