"""Fixtures of the stack core tests: moto's S3 server on loopback and a fresh object store of each kind."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from recsys_stack.objstore import BUCKET, FileStore, ObjectStore, S3Store

S3_ACCESS_KEY = "test-access-key"
S3_SECRET_KEY = "test-secret-key"


@pytest.fixture
def s3_endpoint(moto_endpoint: str) -> str:
    """The session's S3 server (see ``moto_endpoint``)."""
    return moto_endpoint


def _reset_s3(endpoint: str) -> None:
    # Forget every bucket and object so that each test starts from an empty bucket.
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        client.post(f"{endpoint}/moto-api/reset").raise_for_status()


def make_s3_store(endpoint: str) -> S3Store:
    return S3Store(endpoint, BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY)


@pytest.fixture
def fresh_s3(s3_endpoint: str) -> str:
    """The S3 endpoint with an empty ``recsys-artifacts`` bucket."""
    _reset_s3(s3_endpoint)
    with make_s3_store(s3_endpoint) as store:
        store.ensure_bucket()
    return s3_endpoint


@pytest.fixture(params=["file", "s3"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each object store kind in turn: ``file`` then ``s3``."""
    return request.param


@pytest.fixture
def open_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    """A factory of clients of one empty store of ``store_kind`` (several clients = several writers); all closed
    after the test."""
    stores: list[ObjectStore] = []
    endpoint = request.getfixturevalue("fresh_s3") if store_kind == "s3" else None

    def factory() -> ObjectStore:
        store: ObjectStore = FileStore(tmp_path / "store") if endpoint is None else make_s3_store(endpoint)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def object_store(open_store) -> ObjectStore:
    """One empty object store of ``store_kind`` (file or S3)."""
    return open_store()

