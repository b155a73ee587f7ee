"""AdminStore (SQLite): versions, current pointer, If-Match, no-op and rollback semantics, audit pagination."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from recsys_stack.service.adminstore import (
    AdminStore,
    DatabaseUnavailable,
    DocumentNotFound,
    TenantNotFound,
    VersionMismatch,
)
from recsys_stack.service.canonical import doc_version

ACTOR = {"actor_sub": "recsys-stack", "actor_type": "system"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path):
    """An admin store in a temporary file with tenant demo."""
    admin = AdminStore(tmp_path / "admin.db")
    admin.ensure_tenant("demo")
    return admin


def test_put_returns_the_canonical_version_and_get_reads_it_back(store):
    """put() stores the document at version doc_version(doc); get() returns (doc, version)."""
    doc = {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "algo": "pop"}
    version, changed = store.put("demo", "config", doc, **ACTOR)
    assert changed and version == doc_version(doc)
    assert store.get("demo", "config") == (doc, version)


def test_same_document_is_a_noop_and_older_one_repoints_with_audit(store):
    """Re-putting the current document changes nothing; an older document becomes current again and is audited."""
    v1, _ = store.put("demo", "rules", [], **ACTOR, occurred_at=T0)
    v2, _ = store.put("demo", "rules", [{"action": "block", "item_ids": ["a"]}], **ACTOR, occurred_at=T0 + timedelta(1))
    assert store.put("demo", "rules", [{"action": "block", "item_ids": ["a"]}], **ACTOR) == (v2, False)
    assert store.put("demo", "rules", [], **ACTOR, occurred_at=T0 + timedelta(2)) == (v1, True)
    assert store.get("demo", "rules")[1] == v1
    assert store.versions("demo", "rules") == [v1, v2]
    entries = store.audit("demo").entries
    assert [e["entity_id"] for e in entries] == [v1, v2, v1]
    assert entries[0]["extra"]["rollback"] is True and entries[0]["before_state"] == [
        {"action": "block", "item_ids": ["a"]}
    ]


def test_if_match_must_equal_the_current_version(store):
    """A stale If-Match raises VersionMismatch and leaves the current version alone."""
    v1, _ = store.put("demo", "config", {"algo": "a"}, **ACTOR)
    with pytest.raises(VersionMismatch):
        store.put("demo", "config", {"algo": "b"}, **ACTOR, if_match="f" * 64)
    with pytest.raises(VersionMismatch):
        store.put("demo", "config", {"algo": "b"}, **ACTOR, if_match=f'W/"{v1}"')
    assert store.get("demo", "config")[1] == v1
    assert store.put("demo", "config", {"algo": "b"}, **ACTOR, if_match=v1)[1] is True


def test_unknown_tenant_and_missing_document_raise(store):
    """get/put on an unknown tenant raise TenantNotFound; a tenant without a document raises DocumentNotFound."""
    with pytest.raises(TenantNotFound):
        store.get("ghost", "config")
    with pytest.raises(TenantNotFound):
        store.put("ghost", "config", {}, **ACTOR)
    with pytest.raises(DocumentNotFound):
        store.get("demo", "rules")
    assert store.ensure_tenant("demo") is False and store.ensure_tenant("acme") is True
    assert store.tenants() == ["acme", "demo"]


def test_audit_pages_newest_first_across_equal_timestamps(store):
    """Keyset pagination returns every entry once, newest first, even when several share occurred_at."""
    for n in range(7):
        store.put("demo", "config", {"algo": str(n)}, **ACTOR, occurred_at=T0 + timedelta(hours=n // 3))
    store.record_invalidation(
        "demo", targets=["config"], surface=None, invalidated={"config": 1}, **ACTOR, occurred_at=T0
    )
    seen, page = [], store.audit("demo", limit=3)
    while True:
        seen += page.entries
        if page.next_before is None:
            break
        page = store.audit("demo", limit=3, before=page.next_before, before_id=page.next_before_id)
    assert len(seen) == 8 and len({e["id"] for e in seen}) == 8
    keys = [(e["occurred_at"], e["id"]) for e in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[-1]["action"] in ("config.update", "cache.invalidate")
    assert store.audit("demo", limit=500).entries == seen  # limit is clamped to 200
    older = store.audit("demo", before="2026-01-01T01:00:00Z").entries
    assert {e["occurred_at"][:13] for e in older} == {"2026-01-01T00"}


def test_moved_database_is_reported_not_recreated(tmp_path):
    """When the file goes away, operations raise DatabaseUnavailable and no empty database appears."""
    path = tmp_path / "admin.db"
    store = AdminStore(path)
    store.check()
    path.rename(tmp_path / "elsewhere.db")
    with pytest.raises(DatabaseUnavailable):
        store.check()
    assert not path.exists()
    path.mkdir()
    with pytest.raises(DatabaseUnavailable):
        store.tenant_exists("demo")


def test_database_uses_a_rollback_journal(tmp_path):
    """The database is a single file in rollback-journal mode (no -wal beside it)."""
    AdminStore(tmp_path / "admin.db").ensure_tenant("demo")
    with sqlite3.connect(tmp_path / "admin.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert not (tmp_path / "admin.db-wal").exists()
