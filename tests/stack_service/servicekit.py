"""Helpers for the service tests: the real app on uvicorn (127.0.0.1, ephemeral port) over a hand-built store.

The store contents are written here in the suite's formats (manifest v1, artifact blobs) without using the stack's
own publisher, so the service's readers are checked against the wire format itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from recsys_stack.service.adminstore import AdminStore
from recsys_stack.service.app import create_app
from recsys_stack.service.settings import Settings

API_KEY = "test-admin-key-0123456789"
BUCKET = "recsys-artifacts"
WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}

# A small catalog so that tag, brand and category rules have something definite to match.
CATALOG: dict[str, dict[str, Any]] = {
    f"sku-{n:04d}": {
        "item_id": f"sku-{n:04d}",
        "tags": ["even" if n % 2 == 0 else "odd", "low" if n <= 6 else "high"],
        "brand": "acme" if n % 3 == 0 else "globex",
        "category": "books" if n <= 4 else "music" if n <= 8 else "games",
    }
    for n in range(1, 13)
}


def artifact_doc(kind: str, tenant: str, surface: str, payload_key: str, payload: Any) -> dict[str, Any]:
    """An artifact in the suite's layout, with build.version the SHA-256 of its compact unbuilt form."""
    unbuilt = {
        "v": 1,
        "artifact_type": kind,
        "tenant": tenant,
        "surface": surface,
        "window": WINDOW,
        payload_key: payload,
        "build": {"built_at": "", "version": ""},
    }
    version = hashlib.sha256(json.dumps(unbuilt, separators=(",", ":")).encode()).hexdigest()
    built = dict(unbuilt)
    built["build"] = {"built_at": "2026-01-02T01:00:00Z", "version": version, "source_hash": ""}
    return built


def manifest_doc(tenant: str, surface: str, current: dict[str, str]) -> bytes:
    doc = {
        "v": 1,
        "tenant": tenant,
        "surface": surface,
        "current": dict(sorted(current.items())),
        "updated_at": "2026-01-02T01:23:45Z",
    }
    return json.dumps(doc, indent=2).encode()


class FileWriter:
    """Writes keys under a directory (the file store)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3Writer:
    """Writes keys into the bucket of an S3 endpoint."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


@dataclass
class ServiceUnderTest:
    """A running service plus handles on its store and admin database."""

    base_url: str
    settings: Settings
    writer: Any
    admin: AdminStore
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0)

    def new_tenant(self, prefix: str = "t") -> str:
        """A fresh tenant, so that tests sharing one server do not see each other's documents."""
        tenant = f"{prefix}{next(self._counter)}"
        self.admin.ensure_tenant(tenant)
        return tenant

    def publish(
        self,
        tenant: str,
        surface: str,
        items: list[tuple[str, int]],
        *,
        cooc: dict[str, list[tuple[str, int]]] | None = None,
    ) -> dict[str, str]:
        """Write popularity (and cooc) blobs and point the manifest at them; return the manifest's current map."""
        pop = artifact_doc("popularity", tenant, surface, "items", [{"item_id": i, "count": c} for i, c in items])
        current = {"popularity": self.put_blob(tenant, surface, "popularity", pop)}
        if cooc is not None:
            rows = [
                {"item_id": anchor, "items": [{"item_id": i, "count": c} for i, c in neighbours]}
                for anchor, neighbours in sorted(cooc.items())
            ]
            current["cooc"] = self.put_blob(
                tenant, surface, "cooc", artifact_doc("cooc", tenant, surface, "neighbors", rows)
            )
        self.put_manifest(tenant, surface, current)
        return current

    def put_blob(self, tenant: str, surface: str, kind: str, doc: dict[str, Any]) -> str:
        key = f"objectstore/{tenant}/{surface}/{kind}/{doc['build']['version']}.json"
        self.writer.put(key, json.dumps(doc, indent=2).encode())
        return self.writer.uri(key)

    def manifest_key(self, tenant: str, surface: str) -> str:
        return f"registry/current/{tenant}/{surface}/manifest.json"

    def put_manifest(self, tenant: str, surface: str, current: dict[str, str]) -> None:
        self.writer.put(self.manifest_key(tenant, surface), manifest_doc(tenant, surface, current))

    def admin_headers(self, tenant: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"X-API-Key": API_KEY, **extra}
        if tenant is not None:
            headers["X-Org-Id"] = tenant
        return headers

    def invalidate(
        self, client: httpx.Client, tenant: str, targets: list[str], surface: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"targets": targets}
        if surface is not None:
            body["surface"] = surface
        response = client.post(f"/v1/admin/tenants/{tenant}/cache/invalidate", json=body, headers=self.admin_headers())
        assert response.status_code == 200, response.text
        return response.json()

    def recommend(self, client: httpx.Client, tenant: str, surface: str = "home", **body: Any) -> httpx.Response:
        payload = {"surface": surface, "user": {"user_id": "u1"}, **body}
        return client.post("/v1/recommend", json=payload, headers={"X-Org-Id": tenant})


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` on uvicorn in a thread on 127.0.0.1 with an ephemeral port; yield its base URL; always stop it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def file_settings(root: Path, **overrides: Any) -> Settings:
    store = root / "store"
    (store / "registry" / "current").mkdir(parents=True, exist_ok=True)
    base = Settings(
        db_path=root / "admin.db",
        api_key=API_KEY,
        manifest_template=(store / "registry/current").as_uri() + "/{tenant}/{surface}/manifest.json",
        manifest_ttl_seconds=600,
        cache_ttl_seconds=600,
    )
    return replace(base, **overrides)


@contextmanager
def file_service(root: Path, **overrides: Any) -> Iterator[ServiceUnderTest]:
    """The service over a file store under ``root`` (600 s TTLs unless overridden)."""
    settings = file_settings(root, **overrides)
    app = create_app(settings, catalog=CATALOG)
    with serving(app) as base_url:
        yield ServiceUnderTest(base_url, settings, FileWriter(root / "store"), AdminStore(settings.db_path))
