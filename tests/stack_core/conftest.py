"""Fixtures of the stack core tests: moto's S3 server on loopback and a fresh object store of each kind."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from recsys_stack.objstore import BUCKET, FileStore, ObjectStore, S3Store

S3_ACCESS_KEY = "test-access-key"
S3_SECRET_KEY = "test-secret-key"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of moto's S3 server on 127.0.0.1 (free port), shared by the session and stopped at its end."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


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


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
