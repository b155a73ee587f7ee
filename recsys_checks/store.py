"""Object store access by URI (``file://`` and ``s3://``) with compare-and-swap writes.

ETags are the quoted MD5 hex of the content on both stores (what S3 returns for a single-part upload), so that a
state token seen on one store means the same thing on the other. Conditional writes:

- S3: ``If-Match: <etag>`` to replace exactly what was read, ``If-None-Match: *`` to create only.
- Files: the file-store protocol of docs/reference/formats.md ("File store protocol"), shared with the local
  stack's publisher so that a rollback and a publish exclude each other: an exclusive ``flock`` on ``<name>.lock``
  beside the object, waited for at most ``lock_timeout``, held around the compare and the write of
  ``.<name>.<hex>.tmp`` (mode 0644, fsync) renamed over the name; create-only writes are a hard link of the
  finished temporary file (no lock: ``link`` refuses an existing name atomically). The kernel drops a lock when
  its holder dies; lock files are kept and, like every name starting with a dot, never listed.

Errors: an unreachable store raises :class:`Unreachable`, a missing object :class:`NotFound`, a failed
precondition :class:`Conflict`, bad credentials or a malformed URI :class:`BadInput`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from . import deadline
from .config import Target, credential_problem, redact, split_uri
from .errors import BadInput, ChecksError, Conflict, InvalidObject, NotFound, Unreachable

T = TypeVar("T")
DEFAULT_DEADLINE = deadline.DEFAULT_DEADLINE
# The suite's writer leaves objects readable by a service running as another user, whatever the umask.
FILE_MODE = 0o644
DIR_MODE = 0o755
# What one object may weigh: the suite's RECSYS_ARTIFACT_MAX_BYTES default. Nothing larger is read.
MAX_OBJECT_BYTES = 10_000_000
_LOCK_SUFFIX = ".lock"
_TMP_SUFFIX = ".tmp"
_HEADER_VALUE = re.compile(r"b'[^']*'|b\"[^\"]*\"")


def etag_of(data: bytes) -> str:
    """The ETag the stores give ``data``: quoted MD5 hex (S3 single-part semantics)."""
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _same_etag(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip('"') == b.strip('"')


class ObjectStore(ABC):
    """One kind of object store (files, S3): get, put (with compare-and-swap), list and test objects by URI."""

    scheme: str

    @abstractmethod
    def get(self, uri: str) -> tuple[bytes, str]:
        """Return ``(content, etag)``; raise :class:`NotFound` when the object does not exist."""

    @abstractmethod
    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write ``data`` and return its ETag.

        ``if_match``: only replace the object whose ETag is this one; ``if_none_match``: only create. A failed
        precondition raises :class:`Conflict` and changes nothing.
        """

    @abstractmethod
    def list(self, prefix_uri: str) -> list[str]:
        """URIs of every object whose key starts with ``prefix_uri`` (recursively), sorted."""

    def walk(self, prefix_uri: str) -> Iterator[str]:
        """Keys of every object under ``prefix_uri``, relative to it, in key order; lazily where the store pages."""
        for uri in self.list(prefix_uri):
            yield uri[len(prefix_uri):]

    @abstractmethod
    def children(self, prefix_uri: str) -> list[str]:
        """Names of the immediate "directories" under ``prefix_uri`` (which should end with ``/``), sorted."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""

    def close(self) -> None:
        """Release connections (a no-op for files)."""
        return None

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_path(uri: str) -> Path:
    """The absolute path a ``file://`` URI names (``file:///abs/path`` or ``file://localhost/abs/path``), literally."""
    return Path(file_path_text(uri))


def file_path_text(uri: str) -> str:
    """:func:`file_path` as text, without building a ``Path`` (a fleet check reads thousands of manifests)."""
    scheme, host, path = split_uri(uri)
    if scheme != "file" or host not in ("", "localhost"):
        raise BadInput(f"{uri!r} is not a local file URI: use file:///absolute/path")
    if not path.startswith("/"):
        raise BadInput(f"{uri!r} does not name an absolute path: use file:///absolute/path")
    if "\x00" in path:
        raise BadInput(f"{uri!r} contains a NUL character, which no file name can hold")
    return path


def s3_location(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI (the key may be empty for a prefix), literally."""
    scheme, bucket, path = split_uri(uri)
    if scheme != "s3" or not bucket:
        raise BadInput(f"{uri!r} is not an S3 URI: use s3://bucket/key")
    return bucket, path.lstrip("/")


class FileStore(ObjectStore):
    """Objects are files named by absolute ``file://`` URIs."""

    scheme = "file"

    def __init__(self, lock_timeout: float = 5.0, max_bytes: int = MAX_OBJECT_BYTES) -> None:
        self.lock_timeout = lock_timeout
        self.max_bytes = max_bytes

    def get(self, uri: str) -> tuple[bytes, str]:
        path = file_path_text(uri)
        try:
            data = _read_regular(path, uri, self.max_bytes)
        except NotADirectoryError:
            _require_directories(Path(path).parent, uri)
            raise NotFound(f"no object at {uri}: check the path, or list what exists under its directory") from None
        except FileNotFoundError:
            raise NotFound(f"no object at {uri}: check the path, or list what exists under its directory") from None
        except OSError as exc:
            raise Unreachable(f"cannot read {uri}: {exc.strerror}; check the file store is mounted and readable") from None
        return data, etag_of(data)

    def exists(self, uri: str) -> bool:
        """Whether anything is at ``uri``: a directory or a FIFO there is a damaged object, not a missing one."""
        path = file_path(uri)
        try:
            os.stat(path)
            return True
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            _require_directories(path.parent, uri)
            return False
        except OSError as exc:
            raise Unreachable(f"cannot stat {uri}: {exc}; check the file store is mounted") from None

    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = file_path(uri)
        try:
            _make_dirs(path.parent)
            # A create-only write needs no lock: link() refuses an existing name atomically.
            with contextlib.nullcontext() if if_none_match else self._locked(path, uri):
                current = _etag_now(path, uri, self.max_bytes)
                if if_none_match and current is not None:
                    raise Conflict(f"{uri} already exists and is never overwritten; nothing was written")
                if if_match is not None and (current is None or not _same_etag(current, if_match)):
                    seen = "missing" if current is None else current
                    raise Conflict(f"{uri} changed since it was read (expected {if_match}, now {seen}); nothing was written")
                if path.is_dir():
                    raise BadInput(f"{uri} is a directory, not a file: move it aside (these tools never delete) "
                                   "and run again")
                tmp = path.with_name(f".{path.name}.{os.urandom(16).hex()}{_TMP_SUFFIX}")
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
                    with os.fdopen(fd, "wb") as fh:
                        os.fchmod(fh.fileno(), FILE_MODE)  # the suite's mode, whatever the umask
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    if if_none_match:
                        # link() refuses an existing name atomically, even against writers that take no lock.
                        try:
                            os.link(tmp, path)
                        except FileExistsError:
                            raise Conflict(f"{uri} already exists and is never overwritten; nothing was written") from None
                    else:
                        os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                fsync_folder(path.parent)
        except ChecksError:
            raise
        except OSError as exc:
            raise Unreachable(f"cannot write {uri}: {exc.strerror or exc}; check the file store is mounted and writable") from None
        return etag_of(data)

    def list(self, prefix_uri: str) -> list[str]:
        if prefix_uri.endswith("/"):
            base_uri, name_prefix = prefix_uri, ""
        else:
            cut = prefix_uri.rfind("/") + 1
            base_uri, name_prefix = prefix_uri[:cut], prefix_uri[cut:]
        base = file_path(base_uri)
        out: list[str] = []
        try:
            if not base.is_dir():
                _require_directories(base, prefix_uri)
                return []
            for dirpath, dirnames, filenames in os.walk(base, onerror=_raise):  # never skip an unreadable directory
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, base)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
                for name in sorted(filenames):
                    if _is_internal(name):
                        continue
                    rel = rel_dir + name
                    if rel.startswith(name_prefix):
                        out.append(base_uri + rel)
        except OSError as exc:
            raise Unreachable(f"cannot list {prefix_uri}: {exc}; check the file store is mounted and readable") from None
        return sorted(out)

    def children(self, prefix_uri: str) -> list[str]:
        base = file_path(prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/")
        try:
            if not base.is_dir():
                _require_directories(base, prefix_uri)
                return []
            with os.scandir(base) as entries:  # the directory's own types: no stat per entry
                return sorted(e.name for e in entries if e.is_dir())
        except OSError as exc:
            raise Unreachable(f"cannot list {prefix_uri}: {exc}; check the file store is mounted and readable") from None

    @contextlib.contextmanager
    def _locked(self, path: Path, uri: str) -> Iterator[None]:
        lock = path.with_name(path.name + _LOCK_SUFFIX)
        deadline = time.monotonic() + self.lock_timeout
        with open(lock, "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Conflict(
                            f"{uri} is being written by another process (lock {lock} held for "
                            f"{self.lock_timeout:g}s); wait for it to finish and retry"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _stat_token(st: os.stat_result) -> str:
    """A state token for something that is not a readable document (a FIFO, a device, a huge file)."""
    return f'"stat-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"'


def _read_regular(path: Path, uri: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is :class:`InvalidObject`.

    Opened without blocking and checked on the open descriptor, so that a FIFO never hangs the read, a device such
    as /dev/zero is never read, and a file cannot be swapped between the check and the read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidObject(f"{uri} is a directory, not a file: move it aside (these tools never delete) so "
                                "that it can be written", _stat_token(st))
        if not stat.S_ISREG(st.st_mode):
            raise InvalidObject(f"{uri} is not a regular file (a FIFO, socket or device); it is not read",
                                _stat_token(st))
        if st.st_size > limit:
            raise InvalidObject(f"{uri} is {st.st_size} bytes, above the {limit}-byte limit "
                                "(RECSYS_ARTIFACT_MAX_BYTES); it is not read", _stat_token(st))
        # Asking for one byte more than fstat's size and getting exactly that size is the whole file, read in one
        # call (a fleet scan reads thousands); anything else (it grew, a short read) goes on to end of file.
        first = os.read(fd, min(1 << 20, st.st_size + 1, limit + 1))
        if len(first) == st.st_size < (1 << 20):
            return first
        chunks, size = [first], len(first)
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InvalidObject(f"{uri} grew above the {limit}-byte limit while it was read; it is not read",
                                    _stat_token(st))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _etag_now(path: Path, uri: str, limit: int) -> str | None:
    """The state token of what is at ``path`` now (None when nothing is), as :meth:`FileStore.get` reports it."""
    try:
        return etag_of(_read_regular(path, uri, limit))
    except FileNotFoundError:
        return None
    except InvalidObject as exc:
        return exc.etag


def _require_directories(directory: Path, uri: str) -> None:
    """Raise :class:`Unreachable` when ``directory`` or one of its ancestors exists but is not a directory.

    That is a broken or unmounted store (e.g. a mount point replaced by a file), not a missing object.
    """
    for p in (directory, *directory.parents):
        try:
            mode = os.stat(p).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(mode):
            raise Unreachable(
                f"file store unusable while reading {uri}: {p} is not a directory; check the file store is mounted"
            )
        return


def _raise(exc: OSError) -> None:
    raise exc


def _is_internal(name: str) -> bool:
    """Lock files and in-flight temporary files (any name starting with a dot) are never objects."""
    return name.endswith(_LOCK_SUFFIX) or name.startswith(".")


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0755, whatever the umask."""
    missing = []
    for p in (directory, *directory.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(p, DIR_MODE)


def fsync_folder(path: Path) -> None:
    """Make a rename in the folder ``path`` durable, where the platform and file system allow it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class S3Store(ObjectStore):
    """Objects in any bucket of one S3 endpoint (``s3://bucket/key``)."""

    scheme = "s3"

    def __init__(
        self,
        endpoint: str | None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        timeout: float = 5.0,
        deadline: float = DEFAULT_DEADLINE,
        max_bytes: int = MAX_OBJECT_BYTES,
        connections: int = 10,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.endpoint = endpoint
        self.deadline = deadline
        self.max_bytes = max_bytes
        config = Config(
            connect_timeout=min(timeout, 3.0),
            read_timeout=timeout,
            retries={"total_max_attempts": 2, "mode": "standard"},  # at most one retry
            s3={"addressing_style": "path"},
            max_pool_connections=max(10, connections),  # one per request in flight, or requests queue for one
            # S3-compatible stores do not all accept the newer default checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._secrets = (access_key, secret_key)
        for value, variable in ((access_key, "RECSYS_ARTIFACT_S3_ACCESS_KEY"), (secret_key, "RECSYS_ARTIFACT_S3_SECRET_KEY")):
            problem = credential_problem(value, variable)
            if problem:  # refused here: the HTTP library would quote the signed header in its error
                raise BadInput(problem)
        session = boto3.session.Session()
        try:
            self._client: Any = session.client(
                "s3",
                endpoint_url=endpoint,
                region_name=region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
        except ValueError as exc:  # "Invalid endpoint: ...", InvalidRegionError
            raise BadInput(
                f"cannot use the S3 endpoint {endpoint!r} in region {region!r}: {exc}; set RECSYS_ARTIFACT_S3_ENDPOINT "
                "to an http(s) URL and RECSYS_ARTIFACT_S3_REGION to a region name such as us-east-1"
            ) from None
        from .s3read import S3Reader

        if access_key and secret_key:
            from botocore.credentials import Credentials

            given = Credentials(access_key, secret_key)
            credentials: Callable[[], Any] = lambda: given  # noqa: E731
        else:
            # The default chain (environment, profile, instance role), resolved on the first read, within its
            # deadline, as the client itself resolves it: building a store makes no request.
            credentials = session.get_credentials
        self._reader = S3Reader.for_client(self._client, credentials)

    def close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        return self.endpoint or "the default AWS S3 endpoint"

    def _translate(self, exc: Exception, uri: str, doing: str) -> ChecksError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectTimeoutError as BotoConnectTimeout

        if isinstance(exc, NoCredentialsError):
            return BadInput(
                f"no S3 credentials for {uri}: set RECSYS_ARTIFACT_S3_ACCESS_KEY and RECSYS_ARTIFACT_S3_SECRET_KEY"
            )
        if isinstance(exc, EndpointConnectionError | BotoConnectTimeout | ReadTimeoutError | ConnectionClosedError):
            return Unreachable(
                f"object store {self._where()} unreachable while {doing} {uri}: check RECSYS_ARTIFACT_S3_ENDPOINT "
                "and that the store is up"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                return Conflict(f"{uri} changed since it was read (precondition failed); nothing was written")
            if code == "NoSuchBucket":
                err = NotFound(f"bucket of {uri} does not exist at {self._where()}: check the manifest template")
                err.no_bucket = True  # type: ignore[attr-defined]
                return err
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                if doing != "checking" and code != "NoSuchKey":
                    # An S3 API names a missing key NoSuchKey (HEAD has no body, so "404" is normal there only);
                    # a bare 404 is a web server or a proxy at the endpoint, not an empty registry.
                    return Unreachable(
                        f"the endpoint {self._where()} answered 404 without an S3 error code while {doing} {uri}: it "
                        "does not look like an S3 API; check RECSYS_ARTIFACT_S3_ENDPOINT"
                    )
                return NotFound(f"no object at {uri}: check the key, or list what exists under its prefix")
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
                return BadInput(
                    f"access to {uri} denied ({code}): check RECSYS_ARTIFACT_S3_ACCESS_KEY/_SECRET_KEY and the bucket "
                    "policy"
                )
            return Unreachable(f"object store {self._where()} failed while {doing} {uri}: {code or status}")
        if isinstance(exc, BotoCoreError):
            # botocore quotes header values in some errors (the signed Authorization header, for one).
            reason = redact(_HEADER_VALUE.sub("b'…'", str(exc)), self._secrets)
            return Unreachable(
                f"object store {self._where()} failed while {doing} {uri}: {type(exc).__name__}: {reason}; check "
                "RECSYS_ARTIFACT_S3_ENDPOINT"
            )
        raise exc

    def _run(self, fn: Callable[[], T], uri: str, doing: str) -> T:
        """``fn()`` (one S3 call) within the overall deadline, its errors translated."""
        seconds = self.deadline

        def too_slow() -> Unreachable:
            return Unreachable(f"object store {self._where()} answered too slowly while {doing} {uri}: no answer "
                               f"within {seconds:g}s; check RECSYS_ARTIFACT_S3_ENDPOINT and the store's load")

        try:
            return deadline.run(fn, seconds, too_slow)
        except ChecksError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated into the operator-facing errors
            raise self._translate(exc, uri, doing) from None

    def get(self, uri: str) -> tuple[bytes, str]:
        bucket, key = s3_location(uri)

        def modelled() -> tuple[bytes, str]:
            resp = self._client.get_object(Bucket=bucket, Key=key)
            etag = resp.get("ETag") or ""
            if not etag:  # every S3 GET carries one; a web server's page does not
                resp["Body"].close()
                raise no_etag()
            with contextlib.closing(resp["Body"]) as body:
                size = resp.get("ContentLength")
                if isinstance(size, int) and size > self.max_bytes:
                    raise too_large(f"is {size} bytes, above", etag)
                data = body.read(self.max_bytes + 1)
            return checked(data, etag)

        def call() -> tuple[bytes, str]:
            got = self._reader.get(bucket, key, self.max_bytes) if self._reader is not None else None
            if got is None:
                return modelled()
            headers, data = got
            etag = headers.get("ETag") or ""
            if not etag:
                raise no_etag()
            if data is None:
                raise too_large(f"is {headers.get('Content-Length')} bytes, above", etag)
            return checked(data, etag)

        def no_etag() -> Unreachable:
            return Unreachable(f"the endpoint {self._where()} answered {uri} without an ETag: it does not look "
                               "like an S3 API; check RECSYS_ARTIFACT_S3_ENDPOINT")

        def too_large(how: str, etag: str) -> InvalidObject:
            return InvalidObject(f"{uri} {how} the {self.max_bytes}-byte limit (RECSYS_ARTIFACT_MAX_BYTES); it is "
                                 "not read", etag)

        def checked(data: bytes, etag: str) -> tuple[bytes, str]:
            if len(data) > self.max_bytes:
                raise too_large("is larger than", etag)
            return data, etag or etag_of(data)

        return self._run(call, uri, "reading")

    def exists(self, uri: str) -> bool:
        bucket, key = s3_location(uri)
        try:
            self._run(lambda: self._client.head_object(Bucket=bucket, Key=key), uri, "checking")
        except NotFound as err:
            if getattr(err, "no_bucket", False):
                raise
            return False
        return True

    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        bucket, key = s3_location(uri)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": data, "ContentType": "application/json"}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            resp = self._run(lambda: self._client.put_object(**kwargs), uri, "writing")
        except NotFound:
            if if_match is None:
                raise
            # If-Match against an object that is gone: the world moved.
            raise Conflict(f"{uri} no longer exists (expected {if_match}); nothing was written") from None
        return resp.get("ETag") or etag_of(data)

    def _pages(self, uri: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every page of a listing, each page fetched within the deadline."""
        token: str | None = None
        while True:
            args = dict(kwargs, ContinuationToken=token) if token else kwargs
            page = self._run(lambda a=args: self._client.list_objects_v2(**a), uri, "listing")
            yield page
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return

    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = s3_location(prefix_uri)
        out: list[str] = []
        for page in self._pages(prefix_uri, Bucket=bucket, Prefix=prefix):
            out.extend(f"s3://{bucket}/{obj['Key']}" for obj in page.get("Contents", []))
        return sorted(out)

    def walk(self, prefix_uri: str) -> Iterator[str]:
        # Page by page: a registry of 100,000 surfaces is listed without holding every key.
        bucket, prefix = s3_location(prefix_uri)
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(prefix):]
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, prefix_uri, "listing") from None

    def children(self, prefix_uri: str) -> list[str]:
        bucket, prefix = s3_location(prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/")
        names: set[str] = set()
        for page in self._pages(prefix_uri, Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                names.add(cp["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(n for n in names if n)


def open_store(uri: str, target: Target, connections: int = 10) -> ObjectStore:
    """A store able to read and write ``uri`` (any object of the same scheme); close it when done.

    ``connections``: how many requests the caller keeps in flight at once (S3 keeps that many connections open).
    """
    if uri.startswith("file://"):
        return FileStore(lock_timeout=target.timeout, max_bytes=target.max_bytes)
    if uri.startswith("s3://"):
        return S3Store(
            target.s3_endpoint,
            target.s3_access_key,
            target.s3_secret_key,
            region=target.s3_region,
            timeout=target.timeout,
            deadline=target.deadline,
            max_bytes=target.max_bytes,
            connections=connections,
        )
    raise BadInput(f"unsupported object URI {uri!r}: use file:///absolute/path or s3://bucket/key")


class TargetStores:
    """The object stores of a target: one open :class:`ObjectStore` per URI scheme, reused across many URIs (an S3
    client is costly to create), each call routed to the store of its URI's scheme."""

    def __init__(self, target: Target, *, connections: int = 10) -> None:
        self.target = target
        self.connections = connections
        self._open: dict[str, ObjectStore] = {}
        self._lock = threading.Lock()

    def for_uri(self, uri: str) -> ObjectStore:
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        with self._lock:  # checks run in threads; one client per scheme
            if scheme not in self._open:
                self._open[scheme] = open_store(uri, self.target, self.connections)
            return self._open[scheme]

    def get(self, uri: str) -> tuple[bytes, str]:
        return self.for_uri(uri).get(uri)

    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        return self.for_uri(uri).put(uri, data, if_match=if_match, if_none_match=if_none_match)

    def list(self, prefix_uri: str) -> list[str]:
        return self.for_uri(prefix_uri).list(prefix_uri)

    def walk(self, prefix_uri: str) -> Iterator[str]:
        return self.for_uri(prefix_uri).walk(prefix_uri)

    def children(self, prefix_uri: str) -> list[str]:
        return self.for_uri(prefix_uri).children(prefix_uri)

    def exists(self, uri: str) -> bool:
        return self.for_uri(uri).exists(uri)

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __enter__(self) -> TargetStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
