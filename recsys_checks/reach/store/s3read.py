"""The read path of :class:`~recsys_checks.reach.store.S3Store`: one signed GET, without the modelled call around it.

A modelled ``get_object`` spends most of its CPU on what a plain read does not need: the request serialiser, a
dozen event hooks, the response parser. A fleet-wide ``freshness`` reads thousands of manifests with many requests
in flight, and on two cores that CPU, not the store, sets its pace. This reader signs the request with botocore's
SigV4 signer and sends it on the client's own HTTP session, so the endpoint, TLS trust (``AWS_CA_BUNDLE``),
proxies, timeouts and connection pool are the client's; it reads at most the size limit.

It answers only what it understands: a 200, and the 403, 404 and 412 of an S3 API (turned into the ``ClientError``
the modelled call would raise, so the store translates both alike). Anything else (a redirect to another region,
a 5xx, a throttle, a connection the peer closed) returns ``None`` and the store makes the modelled call, which owns
redirects and retries. A client whose internals differ from what this expects gets no reader, and every read is
a modelled call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

# What is read of an error answer: an S3 error document is a few hundred bytes.
_ERROR_BODY_BYTES = 65536
_CODE = re.compile(rb"<Code>([^<]{1,128})</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]{0,512})</Message>")


class S3Reader:
    """Signed GETs on ``client``'s HTTP session (path-style URLs, as the client is configured)."""

    def __init__(self, http: Any, endpoint_url: str, region: str, credentials: Callable[[], Any]) -> None:
        import botocore

        self._http = http
        self._base = endpoint_url.rstrip("/")
        self._region = region
        self._resolve = credentials  # called once, on the first read: it may ask an instance role
        self._credentials: Any = None
        self._agent = f"recsys-checks Botocore/{botocore.__version__}"

    @classmethod
    def for_client(cls, client: Any, credentials: Callable[[], Any]) -> S3Reader | None:
        """A reader for ``client`` signing with what ``credentials()`` gives, or ``None`` for an unfamiliar client."""
        http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        endpoint_url = getattr(client.meta, "endpoint_url", None)
        if not callable(getattr(http, "send", None)) or not endpoint_url:
            return None
        return cls(http, endpoint_url, client.meta.region_name or "us-east-1", credentials)

    def get(self, bucket: str, key: str, max_bytes: int) -> tuple[Any, bytes | None] | None:
        """``(headers, body)`` of a 200: at most ``max_bytes + 1`` bytes of the body (more means too large), or
        ``None`` for the body when its declared length is over ``max_bytes`` (it is not read).

        Raises botocore's ``ClientError`` for a 403, 404 or 412 and botocore's transport errors for a connection
        that fails; returns ``None`` for anything the modelled call should handle.
        """
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import ConnectionClosedError

        if self._credentials is None:
            self._credentials = self._resolve()
            if self._credentials is None:
                return None  # no credentials anywhere: the modelled call says so, as NoCredentialsError
        request = AWSRequest(method="GET", url=f"{self._base}/{bucket}/{quote(key, safe='/~')}",
                             headers={"User-Agent": self._agent})
        S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(request)
        prepared = request.prepare()
        prepared.stream_output = True  # the body is read here, within the limit, not buffered whole
        try:
            response = self._http.send(prepared)
        except ConnectionClosedError:
            return None  # a kept-alive connection the peer had closed: the modelled call retries
        status = response.status_code
        if status == 200:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                response.raw.close()
                return response.headers, None
            return response.headers, self._read(response, max_bytes + 1, prepared.url)
        if status in (403, 404, 412):
            raise _client_error(status, self._read(response, _ERROR_BODY_BYTES, prepared.url))
        response.raw.close()  # unread: the connection is dropped, not reused
        return None

    @staticmethod
    def _read(response: Any, limit: int, url: str) -> bytes:
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
        from urllib3.exceptions import HTTPError, ProtocolError
        from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeout

        raw = response.raw
        try:
            data = raw.read(limit)
        except URLLib3ReadTimeout as exc:
            raw.close()
            raise ReadTimeoutError(endpoint_url=url, error=exc) from None
        except (ProtocolError, HTTPError, OSError) as exc:
            raw.close()
            raise ConnectionClosedError(endpoint_url=url, error=exc) from None
        if len(data) >= limit:
            raw.close()  # the rest is not read; a connection with unread bytes is not reused
            return data
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) != len(data):
            raw.close()  # the peer closed the connection before the end of the body
            raise ConnectionClosedError(endpoint_url=url, error=f"{len(data)} of {declared} bytes received")
        raw.release_conn()  # read to its end: the connection can serve the next request
        return data


def _client_error(status: int, body: bytes) -> Exception:
    from botocore.exceptions import ClientError

    code = _CODE.search(body)
    message = _MESSAGE.search(body)
    # Without an S3 error document the code is the status, as the modelled call reports it.
    error = {"Code": code.group(1).decode("utf-8", "replace") if code else str(status),
             "Message": message.group(1).decode("utf-8", "replace") if message else ""}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
