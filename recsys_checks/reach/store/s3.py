"""The ``s3://`` store: conditional writes with ``If-Match: <etag>`` (replace exactly what was read) and
``If-None-Match: *`` (create only), every call (each page of a listing included) under an overall deadline,
credentials never in a message.

No redirect is followed. botocore answers a 3xx of an S3 endpoint by asking the bucket for its region (a
``HeadBucket``), and a ``HeadBucket`` that is redirected too asks again, until the interpreter's recursion limit: an
endpoint that redirects (a load balancer, a proxy in front of the store, a web server) ends instead with one line
naming the redirect and the setting to fix. The one redirect AWS S3 itself sends, to the bucket's region, names that
region, and botocore still follows it once.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from recsys_checks.core import credentials
from recsys_checks.reach import deadline
from recsys_checks.reach.store.s3read import S3Reader

from ...core.errors import BadInput, ChecksError, Conflict, InvalidObject, NotFound, Unreachable
from ..settings import credential_problem, split_uri
from .base import DEFAULT_DEADLINE, MAX_OBJECT_BYTES, ObjectStore, T, etag_of

_HEADER_VALUE = re.compile(r"b'[^']*'|b\"[^\"]*\"")
_REDIRECTS = (301, 302, 303, 307, 308)
_SHOWN_LOCATION = 200
# One boto3 session per process for the stores given their keys: a session loads the S3 service model and the
# endpoint rules (about 0.15 s of CPU each time), and a run makes several stores. Sessions are not thread-safe, so
# clients are made from it one at a time; the clients themselves are. A store that resolves credentials through the
# default chain (environment, profile, instance role) gets a session of its own, which resolves them afresh.
_SHARED_SESSION: Any = None
_SHARED_SESSION_LOCK = threading.Lock()



def s3_location(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI (the key may be empty for a prefix), literally."""
    scheme, bucket, path = split_uri(uri)
    if scheme != "s3" or not bucket:
        raise BadInput(f"{uri!r} is not an S3 URI: use s3://bucket/key")
    return bucket, path.lstrip("/")



def _refuse_redirect(response: Any = None, **_: Any) -> None:
    """``needs-retry`` hook, first of all: stop at a redirect that names no region (see the module docs).

    Raised inside botocore's retry hook, so that no request follows it; the store's call names what it was doing
    (``redirect`` holds the status and the ``Location``)."""
    if not response or response[0] is None or response[0].status_code not in _REDIRECTS:
        return
    parsed = response[1] or {}
    headers = (parsed.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    if "x-amz-bucket-region" in headers or (parsed.get("Error") or {}).get("Region"):
        return  # AWS's own region redirect: botocore follows it once
    refused = Unreachable(f"redirected ({response[0].status_code})")
    refused.redirect = (response[0].status_code, str(response[0].headers.get("Location") or ""))  # type: ignore[attr-defined]
    raise refused


def _session_for(keys_given: bool) -> Any:
    """The process's shared boto3 session when the store is given its keys, else a new one (see _SHARED_SESSION).
    Called with _SHARED_SESSION_LOCK held."""
    global _SHARED_SESSION
    import boto3

    if not keys_given:
        return boto3.session.Session()
    if _SHARED_SESSION is None:
        _SHARED_SESSION = boto3.session.Session()
    return _SHARED_SESSION


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
        try:
            with _SHARED_SESSION_LOCK:
                session = _session_for(bool(access_key and secret_key))
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

        self._client.meta.events.register_first("needs-retry.s3", _refuse_redirect)
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
            return self._client_error(exc.response, uri, doing)
        if isinstance(exc, BotoCoreError):
            # botocore quotes header values in some errors (the signed Authorization header, for one).
            reason = credentials.mask(_HEADER_VALUE.sub("b'…'", str(exc)), extra=self._secrets)
            return Unreachable(
                f"object store {self._where()} failed while {doing} {uri}: {type(exc).__name__}: {reason}; check "
                "RECSYS_ARTIFACT_S3_ENDPOINT"
            )
        raise exc

    def _client_error(self, response: dict[str, Any], uri: str, doing: str) -> ChecksError:
        """The operator's error for an S3 error answer (``ClientError.response``)."""
        err = response.get("Error", {})
        code = str(err.get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
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
        if status in _REDIRECTS:
            headers = response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}
            region = headers.get("x-amz-bucket-region")
            where = f"region {region}" if region else str(headers.get("location") or "")
            return self._redirected(status, where, uri, doing)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
            return BadInput(
                f"access to {uri} denied ({code}): check RECSYS_ARTIFACT_S3_ACCESS_KEY/_SECRET_KEY and the bucket "
                "policy"
            )
        return Unreachable(f"object store {self._where()} failed while {doing} {uri}: {code or status}")

    def _redirected(self, status: int, location: str, uri: str, doing: str) -> Unreachable:
        where = credentials.mask(location[:_SHOWN_LOCATION], extra=self._secrets) if location else "nowhere named"
        return Unreachable(
            f"the endpoint {self._where()} answered {status} (a redirect to {where}) while {doing} {uri}: no redirect "
            "is followed; set RECSYS_ARTIFACT_S3_ENDPOINT to the address the store itself answers on (and "
            "RECSYS_ARTIFACT_S3_REGION to the bucket's region)"
        )

    def _run(self, fn: Callable[[], T], uri: str, doing: str) -> T:
        """``fn()`` (one S3 call) within the overall deadline, its errors translated."""
        seconds = self.deadline

        def too_slow() -> Unreachable:
            return Unreachable(f"object store {self._where()} answered too slowly while {doing} {uri}: no answer "
                               f"within {seconds:g}s; check RECSYS_ARTIFACT_S3_ENDPOINT and the store's load")

        try:
            return deadline.run(fn, seconds, too_slow)
        except ChecksError as exc:
            redirect = getattr(exc, "redirect", None)
            if redirect is not None:
                raise self._redirected(*redirect, uri, doing) from None
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
        """Every page of a listing, each page fetched within the deadline and proven to be an S3 listing."""
        token: str | None = None
        while True:
            args = dict(kwargs, ContinuationToken=token) if token else kwargs
            page = self._run(lambda a=args: self._client.list_objects_v2(**a), uri, "listing")
            if "IsTruncated" not in page:
                # Every S3 listing says whether it is complete; a web page parsed as one says nothing at all, and
                # would read as an empty registry.
                raise Unreachable(f"the endpoint {self._where()} answered the listing of {uri} with something that "
                                  "is not an S3 listing: it does not look like an S3 API; check "
                                  "RECSYS_ARTIFACT_S3_ENDPOINT")
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
        for page in self._pages(prefix_uri, Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"][len(prefix):]

    def children(self, prefix_uri: str) -> list[str]:
        bucket, prefix = s3_location(prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/")
        names: set[str] = set()
        for page in self._pages(prefix_uri, Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                names.add(cp["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(n for n in names if n)
