"""The s3:// read path against moto's S3 server on 127.0.0.1: serving, failure table and cache invalidation."""

from __future__ import annotations

import socket
from contextlib import closing

import boto3
import pytest
from stack_service.servicekit import API_KEY, BUCKET, CATALOG, S3Writer, ServiceUnderTest, serving

from recsys_stack.service.adminstore import AdminStore
from recsys_stack.service.app import create_app
from recsys_stack.service.settings import Settings

pytestmark = pytest.mark.stack

ACCESS_KEY, SECRET_KEY = "testing-access", "testing-secret"


@pytest.fixture(scope="module")
def s3_endpoint(moto_endpoint):
    """The session's S3 server with the bucket recsys-artifacts, and a client of it; the client closed after the
    module."""
    client = boto3.session.Session().client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    try:
        try:
            client.create_bucket(Bucket=BUCKET)
        except (client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
            pass
        yield moto_endpoint, client
    finally:
        client.close()


def s3_settings(tmp_path, endpoint: str) -> Settings:
    return Settings(
        db_path=tmp_path / "admin.db",
        api_key=API_KEY,
        manifest_template=f"s3://{BUCKET}/registry/current/{{tenant}}/{{surface}}/manifest.json",
        manifest_ttl_seconds=600,
        cache_ttl_seconds=600,
        s3_endpoint=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_use_ssl=False,
    )


@pytest.fixture(scope="module")
def s3_stack(s3_endpoint, tmp_path_factory):
    """The service reading its manifests and blobs from the S3 server."""
    endpoint, client = s3_endpoint
    settings = s3_settings(tmp_path_factory.mktemp("s3svc"), endpoint)
    with serving(create_app(settings, catalog=CATALOG)) as base_url:
        yield ServiceUnderTest(base_url, settings, S3Writer(client, BUCKET), AdminStore(settings.db_path))


def test_recommend_reads_manifest_and_blob_from_s3(s3_stack):
    """Popularity published to the bucket is served in count order with the manifest's blobs."""
    tenant = s3_stack.new_tenant("s3")
    current = s3_stack.publish(tenant, "home", [("sku-0002", 4), ("sku-0001", 9)])
    assert current["popularity"].startswith(f"s3://{BUCKET}/objectstore/{tenant}/home/popularity/")
    with s3_stack.client() as http:
        response = s3_stack.recommend(http, tenant, k=5)
        assert response.status_code == 200
        assert response.json()["items"] == [
            {"item_id": "sku-0001", "rank": 1, "score": 9},
            {"item_id": "sku-0002", "rank": 2, "score": 4},
        ]
        detailed = http.get("/health/detailed").json()
        assert detailed["checks"]["artifact_store"] == {"status": "ok", "detail": f"s3://{BUCKET}"}


def test_s3_missing_manifest_or_blob_serves_empty_and_corrupt_manifest_is_422(s3_stack):
    """NoSuchKey for the manifest or blob is 200 items []; a corrupt manifest is 422."""
    with s3_stack.client() as http:
        missing = s3_stack.new_tenant("s3missing")
        assert s3_stack.recommend(http, missing).json()["items"] == []
        gone = s3_stack.new_tenant("s3gone")
        current = s3_stack.publish(gone, "home", [("sku-0001", 1)])
        s3_stack.writer.delete(current["popularity"].split(f"s3://{BUCKET}/", 1)[1])
        assert s3_stack.recommend(http, gone).json()["items"] == []
        corrupt = s3_stack.new_tenant("s3corrupt")
        s3_stack.writer.put(s3_stack.manifest_key(corrupt, "home"), b'{"v": 1, truncated')
        response = s3_stack.recommend(http, corrupt)
        assert response.status_code == 422 and response.json()["code"] == "RECSYS_ARTIFACT_INCOMPATIBLE"


def test_s3_popularity_invalidation_serves_the_new_publish(s3_stack):
    """The manifest stays cached after a new publish until popularity is invalidated."""
    tenant = s3_stack.new_tenant("s3cache")
    s3_stack.publish(tenant, "home", [("sku-0001", 1)])
    with s3_stack.client() as http:
        assert s3_stack.recommend(http, tenant).json()["items"][0]["item_id"] == "sku-0001"
        s3_stack.publish(tenant, "home", [("sku-0005", 2)])
        assert s3_stack.recommend(http, tenant).json()["items"][0]["item_id"] == "sku-0001"
        body = s3_stack.invalidate(http, tenant, ["popularity"], surface="home")
        assert body["invalidated"] == {"popularity": 2}
        assert s3_stack.recommend(http, tenant).json()["items"][0]["item_id"] == "sku-0005"


def test_unreachable_s3_endpoint_is_500_and_fails_the_store_check(tmp_path):
    """A store that refuses connections is 500 RECSYS_INTERNAL (not an empty list) and fails artifact_store."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = s3_settings(tmp_path, dead)
    with serving(create_app(settings, catalog=CATALOG)) as base_url:
        service = ServiceUnderTest(base_url, settings, None, AdminStore(settings.db_path))
        tenant = service.new_tenant()
        with service.client() as http:
            response = service.recommend(http, tenant)
            assert response.status_code == 500 and response.json()["code"] == "RECSYS_INTERNAL"
            detailed = http.get("/health/detailed")
            assert detailed.status_code == 503 and detailed.json()["checks"]["artifact_store"]["status"] == "fail"
            assert http.get("/readyz").status_code == 200
            assert 'recsys_artifact_load_failures_total{kind="manifest"} 1.0' in http.get("/metrics").text
