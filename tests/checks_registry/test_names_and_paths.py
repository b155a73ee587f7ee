"""Names are used literally, as the suite uses them, and every file path is proven to stay under the store root."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- the proof itself: lexical under the root, links below the root resolved ---------------------------------------


def _store(tmp_path):
    root = tmp_path / "store"
    (root / "registry/current/demo/home").mkdir(parents=True)
    (root / "registry/records/demo/home").mkdir(parents=True)
    outside = tmp_path / "outside"
    (outside / "home").mkdir(parents=True)
    return root, outside


@pytest.mark.parametrize("link", ["registry/current/evil", "registry/current/demo/evil", "registry/records/evil"])
def test_a_link_at_any_depth_below_the_root_that_leaves_it_is_refused(tmp_path, link):
    from recsys_checks.reach.settings import Target

    root, outside = _store(tmp_path)
    (root / link).symlink_to(outside if link.count("/") == 2 else outside / "home")
    target = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    tenant, surface = ("evil", "home") if link.count("/") == 2 else ("demo", "evil")
    with pytest.raises(BadInput, match="outside the store root"):
        target.manifest_uri(tenant, surface) if "current" in link else target.records_prefix(tenant, surface)


def test_a_chain_of_links_that_ends_outside_is_refused_and_links_that_stay_inside_are_followed(tmp_path):
    from recsys_checks.reach.settings import Target

    root, outside = _store(tmp_path)
    current = root / "registry/current"
    (root / "registry/hop").symlink_to(outside)
    (current / "chain").symlink_to(root / "registry/hop")  # inside the store, then out of it
    (current / "alias").symlink_to(current / "demo")  # another name for a tenant inside the store
    target = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    with pytest.raises(BadInput, match="outside the store root"):
        target.manifest_uri("chain", "home")
    assert target.manifest_uri("alias", "home").endswith("/current/alias/home/manifest.json")


def test_the_root_may_itself_be_a_link_and_paths_not_yet_there_are_fine(tmp_path):
    from recsys_checks.reach.settings import Target

    root, _ = _store(tmp_path)
    linked = tmp_path / "linked-store"
    linked.symlink_to(root)
    target = Target(manifest_template=linked.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    assert target.manifest_uri("demo", "home").startswith(linked.as_uri())
    assert target.records_prefix("new", "surface").endswith("/registry/records/new/surface/")


def test_the_last_component_is_not_followed_and_dot_dot_in_a_template_is_resolved(tmp_path):
    """A manifest file that is a link is the read's business (a damaged object), not the proof's; a template whose
    fixed text climbs out with '..' after a name is refused."""
    from recsys_checks.reach.settings import Target

    root, outside = _store(tmp_path)
    (root / "registry/current/demo/home/manifest.json").symlink_to(outside / "manifest.json")
    target = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    assert target.manifest_uri("demo", "home").endswith("/demo/home/manifest.json")
    climbing = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/../../../../{surface}/m.json")
    with pytest.raises(BadInput, match="outside the store root"):
        climbing.manifest_uri("demo", "outside")


@pytest.mark.parametrize("deep", [False, True])
def test_the_fleet_scan_never_reads_through_a_link_out_of_the_store(file_registry, tmp_path, deep):
    """A tenant directory linked outside the store, holding a fresh manifest of its own: that surface is invalid
    (its path leaves the store), the scan goes on with the others, in both modes."""
    from datetime import UTC, datetime

    from recsys_checks.judge.registry.freshness import check_freshness

    outside = tmp_path / "outside"
    (outside / "home").mkdir(parents=True)
    doc = json.loads(file_registry.read(MANIFEST.format(tenant="demo")))
    (outside / "home/manifest.json").write_text(json.dumps({**doc, "tenant": "evil"}))
    (file_registry.root / "registry/current/evil").symlink_to(outside)
    res = check_freshness(file_registry.target, now=datetime(2026, 1, 4, 9, 0, tzinfo=UTC), deep=deep)
    rows = {(r["tenant"], r["surface"]): r for r in res.data["rows"]}
    assert rows[("evil", "home")]["condition"] == "invalid"
    assert "outside the store root" in rows[("evil", "home")]["summary"]
    assert rows[("demo", "home")]["condition"] == "healthy"


# --- a fleet scan proves each tenant's surface folders from one listing: the same answers as one by one -----------

# Each folder below the root is a plain folder, a link to another folder inside the store, or a link out of it.
_KINDS_OF_FOLDER = st.sampled_from(["folder", "inside", "outside"])


def _layout(base, outside, tenants: dict[str, dict[str, str]]) -> None:
    """Tenant and surface folders under ``base`` (current/ or records/) as ``tenants`` says."""
    (base / "_real" / "s").mkdir(parents=True, exist_ok=True)
    for tenant, (kind, surfaces) in tenants.items():
        folder = base / tenant
        if kind == "folder":
            folder.mkdir()
        else:
            folder.symlink_to(base / "_real" if kind == "inside" else outside)
            continue
        for surface, skind in surfaces.items():
            if skind == "folder":
                (folder / surface).mkdir()
            else:
                (folder / surface).symlink_to(base / "_real" / "s" if skind == "inside" else outside)


def _leaves_the_store(path, root) -> bool:
    """The oracle: does the folder holding ``path`` resolve outside ``root``? (``realpath``, nothing of the package)."""
    import os

    real_root = os.path.realpath(root)
    return not os.path.realpath(os.path.dirname(path)).startswith(real_root + os.sep)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["t0", "t1", "t2"]),
                       st.tuples(_KINDS_OF_FOLDER, st.dictionaries(st.sampled_from(["s0", "s1", "s2"]),
                                                                   _KINDS_OF_FOLDER, max_size=3)),
                       min_size=1, max_size=3),
       st.dictionaries(st.sampled_from(["t0", "t1", "t2"]), st.dictionaries(st.sampled_from(["s0", "s1", "s2"]),
                                                                            _KINDS_OF_FOLDER, max_size=3),
                       max_size=3))
def test_surface_folders_proven_by_listing_give_the_answers_of_realpath(current, records):
    """Whatever links a registry holds, a path proven with the scan's shared set (each tenant's surface folders
    proven from one listing first) is refused exactly when its folder resolves outside the store, as without it."""
    import tempfile
    from pathlib import Path

    from recsys_checks.reach.settings import Target

    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp) / "store", Path(tmp) / "outside"
        (outside / "s").mkdir(parents=True)
        (root / "registry/current").mkdir(parents=True)
        (root / "registry/records").mkdir(parents=True)
        _layout(root / "registry/current", outside, current)
        _layout(root / "registry/records", outside, {t: ("folder", s) for t, s in records.items()})
        target = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
        proven: set[str] = set()
        for tenant in ["t0", "t1", "t2"]:
            target.prove_surface_folders(tenant, proven)
            for surface in ["s0", "s1", "s2"]:
                for name, path in (("manifest_uri", f"registry/current/{tenant}/{surface}/manifest.json"),
                                   ("records_prefix", f"registry/records/{tenant}/{surface}/x")):
                    outcomes = []
                    for shared in (proven, None):
                        try:
                            outcomes.append(getattr(target, name)(tenant, surface, proven=shared))
                        except BadInput as exc:
                            assert "outside the store root" in str(exc)
                            outcomes.append("refused")
                    expected = _leaves_the_store(root / path, root)
                    assert (outcomes[0] == "refused") == expected, (name, tenant, surface, outcomes)
                    assert outcomes[0] == outcomes[1]


def test_a_fleet_scan_looks_at_no_surface_folder_on_its_own(file_registry, monkeypatch):
    """The scan lists each tenant's folders once (current/ and records/) instead of an lstat per surface path."""
    import os
    from datetime import UTC, datetime

    from recsys_checks.judge.registry.freshness import check_freshness

    looked: list[str] = []
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: looked.append(str(path)) or real_lstat(path, *a, **k))
    res = check_freshness(file_registry.target, now=datetime(2026, 1, 4, 9, 0, tzinfo=UTC))
    surfaces = [r for r in res.data["rows"] if r["surface"]]
    assert surfaces and all(r["condition"] == "healthy" for r in surfaces)
    tenants = {r["tenant"] for r in surfaces}
    assert len(looked) <= 2 * len(tenants), looked  # each tenant's folder under current/ and records/, no more


def test_a_pass_remembers_a_bounded_number_of_folders_and_still_refuses_a_link(tmp_path, monkeypatch):
    """Past the bound, folders are looked at one by one: the set stays at the bound and a link out is still refused."""
    from recsys_checks.reach import settings
    from recsys_checks.reach.settings import Target

    root, outside = _store(tmp_path)
    for i in range(5):
        (root / f"registry/current/demo/s{i}").mkdir()
    (root / "registry/current/demo/s9").symlink_to(outside / "home")
    monkeypatch.setattr(settings, "PROVEN_MAX", 3)
    target = Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    proven: set[str] = set()
    target.prove_surface_folders("demo", proven)
    for i in range(5):
        target.manifest_uri("demo", f"s{i}", proven=proven)
    assert len(proven) == 3
    with pytest.raises(BadInput, match="outside the store root"):
        target.manifest_uri("demo", "s9", proven=proven)
