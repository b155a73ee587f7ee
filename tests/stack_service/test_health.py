"""Health endpoints: liveness, readiness (503 when the SQLite database is unusable) and per-check details."""

from __future__ import annotations

import shutil

import pytest
from stack_service.servicekit import file_service

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def health_stack(tmp_path_factory):
    """A service of its own, because these tests break and repair its database and store."""
    with file_service(tmp_path_factory.mktemp("health")) as service:
        yield service


def test_healthz_and_readyz_are_ok_when_dependencies_are(health_stack):
    """/healthz is 200; /readyz is 200 with the database check ok; /health/detailed lists both checks."""
    with health_stack.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"]["status"] == "ok"
        detailed = http.get("/health/detailed")
        assert detailed.status_code == 200
        assert detailed.json()["status"] == "ok"
        assert {name: c["status"] for name, c in detailed.json()["checks"].items()} == {
            "database": "ok",
            "artifact_store": "ok",
        }
        assert ready.headers["x-request-id"]


def test_readyz_is_503_when_the_database_is_replaced_by_a_directory(health_stack):
    """Moving admin.db away and putting a directory in its place makes /readyz 503, and back to 200 once restored."""
    db = health_stack.settings.db_path
    aside = db.with_name("admin.db.aside")
    with health_stack.client() as http:
        db.rename(aside)
        db.mkdir()
        try:
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not_ready"
            assert ready.json()["checks"]["database"]["status"] == "fail"
            detailed = http.get("/health/detailed")
            assert detailed.status_code == 503 and detailed.json()["checks"]["database"]["status"] == "fail"
            assert http.get("/healthz").status_code == 200
        finally:
            db.rmdir()
            aside.rename(db)
        assert http.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_file_is_missing(health_stack):
    """A database file that disappeared is not recreated empty: readiness fails until it is back."""
    db = health_stack.settings.db_path
    aside = db.with_name("admin.db.moved")
    with health_stack.client() as http:
        db.rename(aside)
        try:
            assert http.get("/readyz").status_code == 503
            assert not db.exists()
        finally:
            aside.rename(db)
        assert http.get("/readyz").status_code == 200


def test_health_detailed_reports_a_broken_artifact_store(health_stack):
    """When the registry directory is replaced by a file, artifact_store fails in /health/detailed."""
    registry = health_stack.writer.root / "registry"
    aside = registry.with_name("registry.aside")
    with health_stack.client() as http:
        registry.rename(aside)
        (registry.parent / "registry").write_text("not a directory")
        try:
            detailed = http.get("/health/detailed")
            assert detailed.status_code == 503
            assert detailed.json()["status"] == "fail"
            assert detailed.json()["checks"]["artifact_store"]["status"] == "fail"
            assert detailed.json()["checks"]["database"]["status"] == "ok"
        finally:
            registry.unlink()
            shutil.move(aside, registry)
        assert http.get("/health/detailed").status_code == 200


def test_missing_registry_root_is_a_store_error_not_an_empty_list(health_stack):
    """If the whole registry directory is gone, recommend is 500 RECSYS_INTERNAL (like a missing bucket)."""
    tenant = health_stack.new_tenant()
    registry = health_stack.writer.root / "registry"
    aside = registry.with_name("registry.gone")
    with health_stack.client() as http:
        registry.rename(aside)
        try:
            response = health_stack.recommend(http, tenant)
            assert response.status_code == 500 and response.json()["code"] == "RECSYS_INTERNAL"
        finally:
            aside.rename(registry)
        response = health_stack.recommend(http, tenant)
        assert response.status_code == 200 and response.json()["items"] == []
        assert http.get("/health").json() == {"status": "ok"}
