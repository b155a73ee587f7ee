"""Reading the manifest and artifact blobs over ``file://`` and ``s3://``, with the suite's TTL caches.

The manifest is cached per (tenant, surface) for the manifest TTL and blobs per URI for the cache TTL; only
successful loads are cached. That is why a fresh manifest can keep serving stale recommendations until the TTL
expires or the cache is invalidated, exactly as in the suite.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import formats
from ..objstore import s3_client_config
from .settings import Settings

DEFAULT_SURFACE = "default"


class ArtifactError(Exception):
    """A manifest or blob could not be used; ``kind`` is "manifest" or the artifact kind, for metrics."""

    def __init__(self, kind: str, uri: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.uri = uri


class ArtifactNotFound(ArtifactError):
    """The object does not exist: the service serves an empty list, as the suite does."""


class ArtifactIncompatible(ArtifactError):
    """The object exists but is not a v1 document of the expected type, tenant and surface (422)."""


class StoreUnavailable(ArtifactError):
    """The store could not be reached, refused access, or the object is larger than the limit (500)."""


# -- URI reader ------------------------------------------------------------------------------------------------


class UriReader:
    """Reads whole objects by URI with a size limit; raises ArtifactNotFound or StoreUnavailable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._s3: Any = None
        self._s3_probe: Any = None
        self._lock = threading.Lock()

    def read(self, uri: str, kind: str) -> bytes:
        scheme, host, path = formats.split_uri(uri)  # literally, as the suite reads it
        if scheme == "file" and host in ("", "localhost"):
            return self._read_file(uri, kind, Path(path))
        if scheme == "s3" and host:
            return self._read_s3(uri, kind, host, path.lstrip("/"))
        raise ArtifactIncompatible(kind, uri, f"{kind} URI {uri!r} is neither file:// nor s3://")

    def check(self, template: str) -> str:
        """Check that the store behind the manifest template answers; return what was checked."""
        prefix = template.split("{", 1)[0]
        scheme, host, raw_path = formats.split_uri(prefix)
        if scheme == "file":
            path = Path(raw_path)
            directory = path if prefix.endswith("/") else path.parent
            try:
                mode = os.stat(directory).st_mode
            except OSError as exc:
                raise StoreUnavailable(
                    "manifest", prefix, f"registry directory {directory} is not usable: {exc}"
                ) from exc
            if not stat.S_ISDIR(mode):
                raise StoreUnavailable("manifest", prefix, f"registry path {directory} is not a directory")
            return f"file://{directory}"
        if scheme == "s3":
            bucket = host
            try:
                self._client(probe=True).head_bucket(Bucket=bucket)
            except Exception as exc:  # botocore raises many unrelated types; all mean the same here
                raise StoreUnavailable(
                    "manifest", prefix, f"bucket {bucket!r} is not reachable: {_describe(exc)}"
                ) from exc
            return f"s3://{bucket}"
        raise StoreUnavailable("manifest", template, f"manifest template {template!r} is neither file:// nor s3://")

    def _read_file(self, uri: str, kind: str, path: Path) -> bytes:
        limit = self.settings.max_bytes
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    raise StoreUnavailable(
                        kind, uri, f"{kind} {uri} is {size} bytes, over RECSYS_ARTIFACT_MAX_BYTES={limit}"
                    )
                data = handle.read(limit + 1)
        except FileNotFoundError as exc:
            raise ArtifactNotFound(kind, uri, f"{kind} {uri} does not exist") from exc
        except OSError as exc:
            # NotADirectoryError, IsADirectoryError, permission errors: the store itself is broken, not the object.
            reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            raise StoreUnavailable(kind, uri, f"cannot read {kind} {uri}: {reason}: {exc.strerror or exc}") from exc
        if len(data) > limit:
            raise StoreUnavailable(kind, uri, f"{kind} {uri} is over RECSYS_ARTIFACT_MAX_BYTES={limit}")
        return data

    def _client(self, probe: bool = False) -> Any:
        """The S3 client; ``probe`` gives one with 1 s timeouts, so a hung store cannot hang the health endpoint."""
        with self._lock:
            if probe:
                if self._s3_probe is None:
                    self._s3_probe = self._new_client(connect_timeout=1.0, read_timeout=1.0)
                return self._s3_probe
            if self._s3 is None:
                self._s3 = self._new_client(self.settings.s3_connect_timeout, self.settings.s3_read_timeout)
            return self._s3

    def _new_client(self, connect_timeout: float, read_timeout: float) -> Any:
        import boto3

        s = self.settings
        endpoint = s.s3_endpoint
        if endpoint and "://" not in endpoint:
            endpoint = ("https://" if s.s3_use_ssl else "http://") + endpoint
        use_ssl = endpoint.startswith("https://") if endpoint else s.s3_use_ssl
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=s.s3_region,
            aws_access_key_id=s.s3_access_key,
            aws_secret_access_key=s.s3_secret_key,
            use_ssl=use_ssl,
            config=s3_client_config(connect_timeout, read_timeout),
        )

    def _read_s3(self, uri: str, kind: str, bucket: str, key: str) -> bytes:
        from botocore.exceptions import ClientError

        limit = self.settings.max_bytes
        try:
            response = self._client().get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ArtifactNotFound(kind, uri, f"{kind} {uri} does not exist") from exc
            raise StoreUnavailable(kind, uri, f"cannot read {kind} {uri}: {_describe(exc)}") from exc
        except Exception as exc:
            raise StoreUnavailable(kind, uri, f"cannot read {kind} {uri}: {_describe(exc)}") from exc
        body = response["Body"]
        try:
            size = int(response.get("ContentLength") or 0)
            if size > limit:
                raise StoreUnavailable(
                    kind, uri, f"{kind} {uri} is {size} bytes, over RECSYS_ARTIFACT_MAX_BYTES={limit}"
                )
            try:
                data = body.read(limit + 1)
            except Exception as exc:
                raise StoreUnavailable(kind, uri, f"cannot read {kind} {uri}: {_describe(exc)}") from exc
        finally:
            body.close()
        if len(data) > limit:
            raise StoreUnavailable(kind, uri, f"{kind} {uri} is over RECSYS_ARTIFACT_MAX_BYTES={limit}")
        return data


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# -- TTL cache -------------------------------------------------------------------------------------------------


class TtlCache:
    """A thread-safe map whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, value)

    def drop(self, predicate: Callable[[Hashable, Any], bool]) -> int:
        """Remove the live entries matching ``predicate``; return how many were removed."""
        now = self._clock()
        with self._lock:
            doomed = [k for k, (expires, v) in self._entries.items() if predicate(k, v)]
            live = sum(1 for k in doomed if self._entries[k][0] > now)
            for key in doomed:
                del self._entries[key]
            return live


# -- documents -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    tenant: str
    surface: str
    current: dict[str, str]
    updated_at: str
    uri: str

    def age_seconds(self, now: datetime | None = None) -> float | None:
        try:
            moment = datetime.strptime(self.updated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return ((now or datetime.now(UTC)) - moment).total_seconds()


@dataclass(frozen=True)
class Blob:
    kind: str
    tenant: str
    surface: str
    uri: str
    payload: Any  # popularity: list[(item_id, count)]; cooc: dict[item_id, list[(item_id, count)]]


def parse_manifest(data: bytes, uri: str, tenant: str, surface: str) -> Manifest:
    """Parse a v1 manifest strictly and check it is the one for (tenant, surface)."""
    try:
        doc = formats.parse_manifest(data)
        if doc["tenant"] != tenant or doc["surface"] != surface:
            raise ValueError(f"it is for {doc['tenant']!r}/{doc['surface']!r}, not {tenant!r}/{surface!r}")
    except ValueError as exc:
        raise ArtifactIncompatible("manifest", uri, f"manifest {uri} is not a usable v1 manifest: {exc}") from exc
    return Manifest(tenant, surface, dict(doc["current"]), doc["updated_at"], uri)


def parse_blob(data: bytes, uri: str, kind: str, tenant: str, surface: str) -> Blob:
    """Parse a popularity or cooc blob and check its header against what the manifest promised."""

    def bad(why: str) -> ArtifactIncompatible:
        return ArtifactIncompatible(kind, uri, f"{kind} artifact {uri} is not usable: {why}")

    doc = formats.load_object(data, "the blob", bad)
    if type(doc.get("v")) is not int or doc["v"] != 1:
        raise bad(f"v is {doc.get('v')!r}, expected 1")
    if doc.get("artifact_type") != kind:
        raise bad(f"artifact_type is {doc.get('artifact_type')!r}, expected {kind!r}")
    if doc.get("tenant") != tenant or doc.get("surface") != surface:
        raise bad(f"it is for {doc.get('tenant')!r}/{doc.get('surface')!r}, not {tenant!r}/{surface!r}")
    if kind == "popularity":
        payload: Any = _counts(doc.get("items"), bad, "items")
    elif kind == "cooc":
        rows = doc.get("neighbors")
        if not isinstance(rows, list):
            raise bad("neighbors is not a list")
        payload = {}
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("item_id"), str):
                raise bad("a neighbors row has no item_id")
            payload[row["item_id"]] = _counts(row.get("items"), bad, f"neighbors[{row['item_id']}].items")
    else:
        raise bad(f"kind {kind!r} is not served by this service")
    return Blob(kind, tenant, surface, uri, payload)


def _counts(items: Any, bad: Callable[[str], ArtifactIncompatible], where: str) -> list[tuple[str, int]]:
    if not isinstance(items, list):
        raise bad(f"{where} is not a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("item_id"), str) or not item["item_id"]:
            raise bad(f"an element of {where} has no item_id")
        count = item.get("count")
        if type(count) is not int or count < 0:
            raise bad(f"{where} element {item['item_id']!r} has count {count!r}, expected a non-negative integer")
        out.append((item["item_id"], count))
    out.sort(key=lambda pair: (-pair[1], pair[0]))
    return out


# -- the artifact service ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signals:
    """What the artifacts give one request: popularity (count desc, id asc), cooc rows, and where they came from."""

    popularity: list[tuple[str, int]]
    cooc: dict[str, list[tuple[str, int]]] | None
    surface: str | None  # the surface whose manifest served popularity ("default" after the fallback)
    manifest: Manifest | None
    cooc_missing: bool = False


class Artifacts:
    """Loads manifests and blobs through the TTL caches and reports failures to ``on_failure(kind)``."""

    def __init__(
        self,
        settings: Settings,
        reader: UriReader | None = None,
        on_failure: Callable[[str], None] | None = None,
        on_manifest: Callable[[Manifest], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reader = reader or UriReader(settings)
        self.manifests = TtlCache(settings.manifest_ttl_seconds, clock)
        self.blobs = TtlCache(settings.cache_ttl_seconds, clock)
        self._on_failure = on_failure or (lambda kind: None)
        self._on_manifest = on_manifest or (lambda manifest: None)

    def manifest_uri(self, tenant: str, surface: str) -> str:
        return self.settings.manifest_template.replace("{tenant}", tenant).replace("{surface}", surface)

    def manifest(self, tenant: str, surface: str, *, fallback: bool = False) -> Manifest | None:
        """The current manifest, or None when there is none (not counted as a failure for the fallback surface)."""
        cached = self.manifests.get((tenant, surface))
        if cached is not None:
            return cached
        uri = self.manifest_uri(tenant, surface)
        try:
            manifest = parse_manifest(self.reader.read(uri, "manifest"), uri, tenant, surface)
        except ArtifactNotFound:
            if uri.startswith("file:"):
                try:
                    # A missing registry root is a missing store (like a missing bucket), not a missing manifest.
                    self.reader.check(self.settings.manifest_template)
                except StoreUnavailable:
                    self._on_failure("manifest")
                    raise
            if not fallback:
                self._on_failure("manifest")
            return None
        except ArtifactError:
            self._on_failure("manifest")
            raise
        self.manifests.put((tenant, surface), manifest)
        self._on_manifest(manifest)
        return manifest

    def blob(self, manifest: Manifest, kind: str) -> Blob | None:
        """The blob of ``kind`` the manifest names, or None when it names none or the object is missing."""
        uri = manifest.current.get(kind)
        if not uri:
            return None
        cached = self.blobs.get(uri)
        if cached is not None and (cached.tenant, cached.surface, cached.kind) == (
            manifest.tenant,
            manifest.surface,
            kind,
        ):
            return cached
        try:
            blob = parse_blob(self.reader.read(uri, kind), uri, kind, manifest.tenant, manifest.surface)
        except ArtifactNotFound:
            self._on_failure(kind)
            return None
        except ArtifactError:
            self._on_failure(kind)
            raise
        self.blobs.put(uri, blob)
        return blob

    def signals(self, tenant: str, surface: str, *, want_cooc: bool) -> Signals:
        """Popularity for (tenant, surface), falling back to surface "default" when it has no items."""
        names = [surface] if surface == DEFAULT_SURFACE else [surface, DEFAULT_SURFACE]
        loaded: dict[str, Manifest | None] = {}
        used: str | None = None
        items: list[tuple[str, int]] = []
        for name in names:
            manifest = loaded[name] = self.manifest(tenant, name, fallback=name != surface)
            blob = self.blob(manifest, "popularity") if manifest is not None else None
            if blob is not None and blob.payload:
                items, used = blob.payload, name
                break
        first = loaded[used or surface]
        cooc = None
        cooc_missing = False
        if want_cooc:
            blob = self.blob(first, "cooc") if first is not None else None
            cooc = blob.payload if blob is not None else None
            cooc_missing = cooc is None
        return Signals(items, cooc, used, first, cooc_missing)

    def invalidate(self, tenant: str, surface: str | None = None) -> int:
        """Drop cached manifests and blobs of the tenant (and surface); return how many entries went."""

        def mine_manifest(key: Hashable, value: Any) -> bool:
            return key[0] == tenant and (surface is None or key[1] == surface)  # type: ignore[index]

        def mine_blob(key: Hashable, value: Any) -> bool:
            return value.tenant == tenant and (surface is None or value.surface == surface)

        return self.manifests.drop(mine_manifest) + self.blobs.drop(mine_blob)
