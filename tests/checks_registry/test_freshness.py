"""Fleet freshness: every (tenant, surface) under the registry, classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recsys_checks.errors import Unreachable
from recsys_checks.freshness import fleet

FRESH = datetime(2026, 1, 4, 9, 0, tzinfo=UTC)
STALE = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_fleet_is_quiet_when_every_surface_is_fresh(registry):
    """One fresh valid surface: ok, one healthy row."""
    res = fleet(registry.target, now=FRESH)
    assert res.status == "ok", res.summary
    assert [(r["tenant"], r["surface"], r["condition"]) for r in res.data["rows"]] == [("demo", "home", "healthy")]


def test_fleet_fires_on_a_stale_surface(registry):
    """Two days later the same surface is stale."""
    res = fleet(registry.target, now=STALE)
    assert res.status == "fail"
    assert res.data["counts"]["stale"] == 1 and "stale: demo/home" in res.summary


def test_fleet_classifies_missing_and_invalid(registry):
    """A surface dir without manifest and a tenant without surfaces are missing; a garbled manifest is invalid."""
    registry.write("registry/current/demo/search/manifest.json.bak", b"{}")  # surface directory, no manifest
    registry.write("registry/current/demo/promo/manifest.json", b"{garbage")
    if registry.root is not None:
        (registry.root / "registry/current/acme").mkdir()  # tenant without surfaces (a file store has directories)
    seen = []
    res = fleet(registry.target, now=FRESH, progress=lambda done, total, label: seen.append((done, total, label)))
    cond = {(r["tenant"], r["surface"]): r["condition"] for r in res.data["rows"]}
    assert cond[("demo", "home")] == "healthy"
    assert cond[("demo", "search")] == "missing"
    assert cond[("demo", "promo")] == "invalid"
    if registry.root is not None:
        assert cond[("acme", None)] == "missing"
    assert res.status == "fail"
    assert [d for d, _, _ in seen] == list(range(1, len(res.data["rows"]) + 1))
    assert {t for _, t, _ in seen} == {len(res.data["rows"])}
    assert "demo/promo: invalid" in {label for _, _, label in seen}


def test_fleet_tenant_without_surfaces_is_missing(registry):
    """Asking for a tenant that has no surfaces reports it missing rather than passing."""
    res = fleet(registry.target, tenant="acme", now=FRESH)
    assert res.status == "fail"
    assert res.data["rows"][0]["condition"] == "missing" and res.data["rows"][0]["tenant"] == "acme"


def test_fleet_filters_by_tenant(registry):
    """With a tenant only its surfaces are checked."""
    doc = json.loads(registry.read("registry/current/demo/home/manifest.json"))
    doc["tenant"] = "acme"
    registry.write("registry/current/acme/home/manifest.json", json.dumps(doc).encode())
    res = fleet(registry.target, tenant="demo", now=FRESH)
    assert [r["tenant"] for r in res.data["rows"]] == ["demo"] and res.status == "ok"
    all_rows = fleet(registry.target, now=FRESH).data["rows"]
    assert {r["tenant"] for r in all_rows} == {"acme", "demo"}


def test_fleet_of_an_empty_registry_fails(file_registry, tmp_path):
    """No surfaces at all fails and says which template to check."""
    from recsys_checks.config import Target

    target = Target(manifest_template=(tmp_path / "empty").as_uri() + "/current/{tenant}/{surface}/manifest.json")
    res = fleet(target)
    assert res.status == "fail" and "RECSYS_ARTIFACT_MANIFEST_TEMPLATE" in res.summary


@pytest.mark.stack
def test_fleet_against_an_unreachable_store_raises(closed_port):
    """A closed endpoint raises Unreachable instead of reporting an empty fleet."""
    from recsys_checks.config import Target

    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=f"http://127.0.0.1:{closed_port}", s3_access_key="k", s3_secret_key="s", timeout=1.0)
    with pytest.raises(Unreachable):
        fleet(target)
