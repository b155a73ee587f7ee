"""The stack's object store: a directory (``file://``) or an S3 bucket, one key layout, conditional puts.

Key layout (identical in both stores)::

    registry/current/<tenant>/<surface>/manifest.json
    registry/records/<tenant>/<surface>/<kind>/<version>.json
    registry/audit/<tenant>/<surface>/...
    objectstore/<tenant>/<surface>/<kind>/<version>.json

ETags are the quoted MD5 hex of the content, as S3 returns them for single-part uploads, so that a token read
from one store type means the same thing in the other. Conditional puts (``if_match`` / ``if_none_match``) are what
compare-and-swap of the manifest rests on: on S3 they are the ``If-Match`` / ``If-None-Match`` headers; on files a
per-key lock file makes compare-then-rename atomic between processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recsys_checks.reach.store.files import make_dirs

from .formats import file_uri, safe_segment, split_uri

BUCKET = "recsys-artifacts"
BLOB_PREFIX = "objectstore"
REGISTRY_PREFIX = "registry"


class StoreError(Exception):
    """Base class of object store errors."""


class NotFound(StoreError):
    """The key does not exist."""


class PreconditionFailed(StoreError):
    """A conditional put lost: the object changed (If-Match) or already exists (If-None-Match)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached, refused the credentials, or failed; nothing was read or written."""


# --- key layout ----------------------------------------------------------------------------------------------------


def manifest_key(tenant: str, surface: str) -> str:
    return f"{REGISTRY_PREFIX}/current/{safe_segment(tenant)}/{safe_segment(surface, 'surface')}/manifest.json"


def records_prefix(tenant: str, surface: str, kind: str | None = None) -> str:
    prefix = f"{REGISTRY_PREFIX}/records/{safe_segment(tenant)}/{safe_segment(surface, 'surface')}/"
    return prefix + (f"{safe_segment(kind, 'kind')}/" if kind else "")


def record_key(tenant: str, surface: str, kind: str, version: str) -> str:
    return records_prefix(tenant, surface, kind) + f"{safe_segment(version, 'version')}.json"


def blob_key(tenant: str, surface: str, kind: str, version: str) -> str:
    return (
        f"{BLOB_PREFIX}/{safe_segment(tenant)}/{safe_segment(surface, 'surface')}/"
        f"{safe_segment(kind, 'kind')}/{safe_segment(version, 'version')}.json"
    )


def hold_key(tenant: str, surface: str) -> str:
    """The surface's hold marker, beside its manifest: while it says held, the publisher does not swap."""
    return f"{REGISTRY_PREFIX}/current/{safe_segment(tenant)}/{safe_segment(surface, 'surface')}/hold.json"


def audit_prefix(tenant: str, surface: str) -> str:
    return f"{REGISTRY_PREFIX}/audit/{safe_segment(tenant)}/{safe_segment(surface, 'surface')}/"


def etag_of(data: bytes) -> str:
    """The S3-style ETag of ``data``: quoted MD5 hex.

    Format twin of ``recsys_checks.reach.store.base.etag_of``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _same_etag(a: str, b: str) -> bool:
    # S3 accepts If-Match with or without quotes; so do we.
    return a.strip('"') == b.strip('"')


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key or key.startswith("/") or key.endswith("/"):
        raise ValueError(f"bad object key {key!r}: use a relative key such as 'objectstore/demo/home/...'")
    for part in key.split("/"):
        if part in ("", ".", "..") or "\\" in part or any(ord(c) < 32 or ord(c) == 127 for c in part):
            raise ValueError(f"bad object key {key!r}: segments must be plain names (no '', '.', '..', '\\')")
    return key


# --- the interface -------------------------------------------------------------------------------------------------


class ObjectStore:
    """Get, put (optionally conditional), list by prefix; URIs for keys and back."""

    kind = "abstract"

    def get(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        raise NotImplementedError

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write ``data`` at ``key`` and return its ETag.

        ``if_match``: only if the current object has that ETag; ``if_none_match``: only if no object exists.
        Raises :class:`PreconditionFailed` when the condition does not hold (and writes nothing).
        """
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        try:
            self.get_with_etag(key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix`` (a plain string prefix, as in S3), sorted."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def key_for_uri(self, uri: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- files ---------------------------------------------------------------------------------------------------------


LOCK_SUFFIX = ".lock"
LOCK_WAIT = 10.0  # seconds a writer waits for another's lock before giving up


class FileStore(ObjectStore):
    """A directory as an object store: ``file://`` URIs, atomic writes, lock-file conditional puts."""

    kind = "file"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailable(f"file store root {self.root} is missing; restore it or restart the stack")

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        path = self._path(key)
        self._require_root()
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no object at {self.uri(key)}") from None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {self.uri(key)}: {exc.strerror or exc}") from None
        return data, etag_of(data)

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        # flock() on a "<name>.lock" file beside the object: the same lock recsys_checks takes for a rollback, so a
        # publish and a rollback exclude each other. flock() locks belong to the open file description, so they
        # exclude other threads of this process as well as other processes, and die with their holder. Lock files
        # are kept (unlinking one while another writer waits on it would break the exclusion) and never listed.
        # The file-store protocol is written down once, in docs/reference/formats.md ("File store protocol").
        path = self._path(key)
        make_dirs(path.parent)
        deadline = time.monotonic() + LOCK_WAIT
        with open(path.with_name(path.name + LOCK_SUFFIX), "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreUnavailable(f"{self.uri(key)} is being written by another process (its lock was "
                                               f"held for {LOCK_WAIT:g}s); retry when it has finished") from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = self._path(key)
        self._require_root()
        try:
            with self._lock(key):
                if if_match is not None or if_none_match:
                    try:
                        current: str | None = etag_of(path.read_bytes())
                    except FileNotFoundError:
                        current = None
                    if if_none_match and current is not None:
                        raise PreconditionFailed(f"{self.uri(key)} already exists (If-None-Match)")
                    if if_match is not None and (current is None or not _same_etag(current, if_match)):
                        seen = current or "no object"
                        raise PreconditionFailed(f"{self.uri(key)} changed: expected {if_match}, found {seen}")
                _write_atomic(path, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {self.uri(key)}: {exc.strerror or exc}") from None
        return etag_of(data)

    def list(self, prefix: str) -> list[str]:
        self._require_root()
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*base.split("/")) if base else self.root
        if not start.is_dir():
            return []
        keys = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(".") or name.endswith(LOCK_SUFFIX):  # in-flight temp files, writer locks
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def uri(self, key: str) -> str:
        return file_uri(self._path(key).as_posix())

    def key_for_uri(self, uri: str) -> str:
        scheme, host, raw_path = split_uri(uri)
        if scheme != "file" or host not in ("", "localhost"):
            raise ValueError(f"{uri!r} is not a file:// URI of this store ({self.root})")
        path = Path(raw_path)
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            raise ValueError(f"{uri!r} is outside this store's root {self.root}") from None
        return _check_key(rel.as_posix())


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory + fsync + rename + directory fsync: readers see old or new, never half."""
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(16)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Atomically write a local file (run logs, checkpoints): temp file + fsync + rename."""
    _write_atomic(Path(path), data)


# --- S3 ------------------------------------------------------------------------------------------------------------

_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


def s3_client_config(connect_timeout: float, read_timeout: float) -> Any:
    """The botocore settings of every S3 client of the stack (this store and the service's reader)."""
    from botocore.config import Config

    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # An unreachable store must fail fast (service readiness, runbook steps), not back off for seconds.
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"},
    )


class S3Store(ObjectStore):
    """An S3 bucket (moto's server locally) through boto3: conditional puts, fail-fast timeouts, no retries."""

    kind = "s3"

    def __init__(
        self,
        endpoint: str | None,
        bucket: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
    ) -> None:
        import boto3

        self.endpoint = endpoint
        self.bucket = bucket
        with _SESSION_LOCK:  # creating clients from one session is not thread-safe; reusing it is much faster
            global _SESSION
            if _SESSION is None:
                _SESSION = boto3.session.Session()
            self._client: Any = _SESSION.client(
                "s3",
                endpoint_url=endpoint or None,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
                config=s3_client_config(connect_timeout, read_timeout),
            )

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    def close(self) -> None:
        self._client.close()

    @contextlib.contextmanager
    def _errors(self, key: str, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            where = self.uri(key) if key else f"s3://{self.bucket}"
            if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
                raise NotFound(f"no object at {where}") from None
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
                raise PreconditionFailed(f"{where} changed or already exists ({code or status})") from None
            if code == "NoSuchBucket":
                raise StoreUnavailable(f"bucket {self.bucket!r} does not exist at {self.endpoint}") from None
            if status in (401, 403):
                raise StoreUnavailable(
                    f"S3 at {self.endpoint} refused the credentials ({code}); check "
                    "RECSYS_ARTIFACT_S3_ACCESS_KEY / RECSYS_ARTIFACT_S3_SECRET_KEY"
                ) from None
            raise StoreUnavailable(f"S3 {action} {where} failed: {code or status}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"S3 at {self.endpoint} is unreachable ({type(exc).__name__}: {exc})") from None

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        _check_key(key)
        with self._errors(key, "get"):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        return data, response.get("ETag") or etag_of(data)

    def exists(self, key: str) -> bool:
        _check_key(key)
        try:
            with self._errors(key, "head"):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return False
        return True

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        _check_key(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": "application/json"}
        if if_match is not None:
            kwargs["IfMatch"] = if_match if if_match.startswith('"') else f'"{if_match}"'
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            with self._errors(key, "put"):
                response = self._client.put_object(**kwargs)
        except NotFound:
            # S3 answers If-Match on a missing key with 404: the object the caller saw is gone, a lost race.
            raise PreconditionFailed(f"{self.uri(key)} no longer exists (If-Match {if_match})") from None
        return response.get("ETag") or etag_of(data)

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with self._errors("", "list"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{_check_key(key)}"

    def key_for_uri(self, uri: str) -> str:
        scheme, bucket, key = split_uri(uri)
        if scheme != "s3" or bucket != self.bucket:
            raise ValueError(f"{uri!r} is not an s3:// URI in bucket {self.bucket!r}")
        return _check_key(key.lstrip("/"))

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (local S3 only; production buckets are provisioned)."""
        from botocore.exceptions import ClientError

        try:
            with self._errors("", "head"):
                self._client.head_bucket(Bucket=self.bucket)
            return
        except (NotFound, StoreUnavailable):
            pass
        try:
            self._client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StoreUnavailable(f"cannot create bucket {self.bucket!r}: {exc}") from None
