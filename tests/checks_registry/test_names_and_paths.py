"""Names are used literally, as the suite uses them, and every file path is proven to stay under the store root."""

from __future__ import annotations

import json

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.registry import manifest
from recsys_checks.levers import rollback

MANIFEST = "registry/current/{tenant}/home/manifest.json"


def test_a_percent_encoded_slash_is_a_name_character_not_a_separator(file_registry):
    """'..%2fcurrent%2fdemo' names a tenant of its own: it never reads demo's manifest."""
    res = manifest.check_manifest(file_registry.target, "..%2fcurrent%2fdemo", "home")
    assert res.data["condition"] == "missing", res.summary
    assert "..%2fcurrent%2fdemo/home/manifest.json" in res.data["manifest_uri"]


def test_a_percent_encoded_traversal_never_writes_outside_the_store(file_registry, tmp_path):
    """A rollback for '..%2f..%2f..%2fX' finds nothing to roll back and writes nothing anywhere."""
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(BadInput):
        rollback.plan_rollback(file_registry.target, "..%2f..%2f..%2f..%2fX", "home", previous=True)
    assert sorted(p for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("tenant", ["a#b", "c%41d", "e?f", "%00"])
def test_names_the_suite_serves_literally_are_found(file_registry, tenant):
    """A tenant named with '#', '%41' or '?' is found at its literal path, as the suite finds it."""
    doc = json.loads(file_registry.read(MANIFEST.format(tenant="demo")))
    doc["tenant"] = tenant
    file_registry.write(MANIFEST.format(tenant=tenant), json.dumps(doc).encode())
    res = manifest.check_manifest(file_registry.target, tenant, "home", validate_blobs=False)
    assert res.data["condition"] != "missing", res.summary
    assert res.data["manifest"]["tenant"] == tenant


def test_a_symlink_out_of_the_store_is_refused(file_registry, tmp_path):
    """A tenant directory that resolves outside the store root is refused before anything is read or written."""
    outside = tmp_path / "outside"
    (outside / "home").mkdir(parents=True)
    (file_registry.root / "registry/current/evil").symlink_to(outside)
    with pytest.raises(BadInput, match="outside the store root"):
        manifest.check_manifest(file_registry.target, "evil", "home")
    with pytest.raises(BadInput, match="outside the store root"):
        rollback.plan_rollback(file_registry.target, "evil", "home", previous=True)
    assert list(outside.rglob("*")) == [outside / "home"]
