"""Large registries for the benchmarks, written directly in the suite's formats (no publisher loop).

A shallow ``freshness`` reads each manifest and the version record of the popularity version it names (for the
data window's end), never a blob: so the fleet-scale registries hold manifests whose pointers name blobs by the
suite's layout and, with ``records=True``, those popularity records; the registry for ``--deep`` holds every blob
and version record as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsys_stack.formats import (
    artifact_bytes,
    build_artifact,
    cooc_rows,
    manifest_bytes,
    manifest_dict,
    popularity_items,
    record_bytes,
    record_dict,
)

FAKE_VERSION = "0" * 64


def names(tenants: int, surfaces: int) -> Iterator[tuple[str, str]]:
    """Every (tenant, surface) of a fleet of ``tenants`` × ``surfaces``."""
    for t in range(tenants):
        for s in range(surfaces):
            yield f"tenant{t:04d}", f"surface{s:05d}"


def manifest_for(base: str, tenant: str, surface: str, now: datetime) -> bytes:
    current = {kind: f"{base}/objectstore/{tenant}/{surface}/{kind}/{FAKE_VERSION}.json"
               for kind in ("cooc", "popularity")}
    return manifest_bytes(manifest_dict(tenant, surface, current, now))


def popularity_record_for(base: str, tenant: str, surface: str, now: datetime, built: datetime) -> bytes:
    """The version record of the popularity version :func:`manifest_for` names: yesterday's window (fresh data), as
    one daily run writes it for every surface, each built at its own time ``built``."""
    end = datetime(now.year, now.month, now.day, tzinfo=UTC)
    uri = f"{base}/objectstore/{tenant}/{surface}/popularity/{FAKE_VERSION}.json"
    return record_bytes(record_dict(tenant, surface, "popularity", FAKE_VERSION, uri, end - timedelta(days=1), end,
                                    built))


def write_manifests(root: Path, tenants: int, surfaces: int, *, records: bool = False) -> int:
    """Manifests of a fresh fleet in a file store at ``root`` (``records``: with the popularity record each names);
    returns how many."""
    now = datetime.now(UTC).replace(microsecond=0)
    base = root.as_uri()
    count = 0
    for tenant, surface in names(tenants, surfaces):
        directory = root / "registry" / "current" / tenant / surface
        os.makedirs(directory, exist_ok=True)
        (directory / "manifest.json").write_bytes(manifest_for(base, tenant, surface, now))
        if records:
            folder = root / "registry" / "records" / tenant / surface / "popularity"
            os.makedirs(folder, exist_ok=True)
            built = now - timedelta(microseconds=count + 1)  # one build after another: no two alike
            (folder / f"{FAKE_VERSION}.json").write_bytes(popularity_record_for(base, tenant, surface, now, built))
        count += 1
    return count


def put_manifests(client, bucket: str, tenants: int, surfaces: int, workers: int = 16) -> int:
    """The same manifests in an S3 bucket (``s3://bucket/registry/...``), written by a pool of threads."""
    now = datetime.now(UTC).replace(microsecond=0)
    base = f"s3://{bucket}"

    def put(pair: tuple[str, str]) -> None:
        tenant, surface = pair
        client.put_object(Bucket=bucket, Key=f"registry/current/{tenant}/{surface}/manifest.json",
                          Body=manifest_for(base, tenant, surface, now))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(1 for _ in pool.map(put, names(tenants, surfaces)))


def write_full_surfaces(root: Path, tenants: int, surfaces: int, items: int = 300) -> int:
    """Surfaces with real blobs (popularity and co-occurrence), records and manifests; returns how many."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=1)
    end = start + timedelta(days=1)
    counts = {f"sku-{i:05d}": 10_000 - i for i in range(items)}
    pairs = {f"sku-{i:05d}": {f"sku-{(i + j) % items:05d}": 50 - j for j in range(1, 11)} for i in range(items // 3)}
    payloads = {"popularity": popularity_items(counts), "cooc": cooc_rows(pairs)}
    count = 0
    for tenant, surface in names(tenants, surfaces):
        current = {}
        for kind, payload in payloads.items():
            artifact = build_artifact(kind, tenant, surface, start, end, payload, built_at=now)
            version = artifact["build"]["version"]
            blob = root / "objectstore" / tenant / surface / kind / f"{version}.json"
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(artifact_bytes(artifact))
            uri = blob.as_uri()
            record = root / "registry" / "records" / tenant / surface / kind / f"{version}.json"
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_bytes(record_bytes(record_dict(tenant, surface, kind, version, uri, start, end, now)))
            current[kind] = uri
        manifest = root / "registry" / "current" / tenant / surface / "manifest.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_bytes(manifest_bytes(manifest_dict(tenant, surface, current, now)))
        count += 1
    return count
