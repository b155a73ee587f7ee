"""HTTP client for the recsys-service API (health, metrics, recommendations, admin documents, audit, caches).

Every call sends ``X-Org-Id`` (tenant-scoped calls) and a fresh ``X-Request-Id`` so that an operator can find the
call in the service's logs; ``X-API-Key`` is sent when a key is configured and is required for admin calls. The key
is never put into a message, a ``repr``, a result or a log line. Error bodies (``application/problem+json``) become
:class:`~recsys_checks.core.errors.ServiceProblem`, which carries the HTTP status and the problem ``code`` so that checks can classify them;
a service that does not answer becomes :class:`~recsys_checks.core.errors.Unreachable`.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, ServiceProblem, Unreachable
from recsys_checks.reach import deadline
from recsys_checks.reach.settings import Target, credential_problem, safe_segment

if TYPE_CHECKING:
    import httpx


def _import_httpx() -> None:
    """Import httpx, once, when the first client is made: a command that never calls the service (a fleet scan of
    the registry) does not pay a fifth of a second for it. Every use of ``httpx`` below runs on a client."""
    global httpx
    import httpx


ADMIN_KINDS = ("config", "rules")
CACHE_TARGETS = ("popularity", "config", "rules")
AUDIT_PAGE_MAX = 200
MAX_ANSWER_BYTES = 10_000_000  # no answer of the API comes near this; a bigger one is not the service
_HEADER_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ETAG = re.compile(r'^(?:W/)?"?([^"]*)"?$')


@dataclass
class Answer:
    """A raw answer where a non-success status is information rather than an error (``/readyz`` answering 503)."""

    status: int
    body: Any
    request_id: str | None
    path: str
    elapsed_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1


def header_value(value: str, what: str) -> bytes:
    """``value`` as a header value: UTF-8 bytes (the suite reads header bytes as UTF-8), so that names such as
    'José Núñez' or a Cyrillic tenant can be sent; a control character cannot be, and is refused."""
    if _HEADER_CONTROL.search(value):
        raise BadInput(f"the {what} {value!r} contains a control character (a newline?) and cannot be sent in a "
                       "header; set it again without one")
    return value.encode("utf-8")


def _path_segment(name: str) -> str:
    """A checked name as one URL path segment: every reserved character percent-encoded (``%`` too)."""
    return quote(name, safe="")


def bare_etag(value: str | None) -> str | None:
    """``W/"abc"`` / ``"abc"`` / ``abc`` → ``abc`` (the admin API's versions are bare hex)."""
    if value is None:
        return None
    m = _ETAG.match(value.strip())
    return m.group(1) if m else value.strip()


# --- Prometheus text -------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _parse_value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    if lowered == "nan":
        return math.nan
    return float(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Parse Prometheus text exposition into ``{'name{k="v",...}': value}`` (labels sorted; bare name if none).

    Comments and malformed lines are skipped: a check reads a few known series and must not fail on one odd line.
    """
    out: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, _, labels_text, value_text = m.group(1), m.group(2), m.group(3), m.group(4)
        try:
            value = _parse_value(value_text)
        except ValueError:
            continue
        labels = sorted(_LABEL.findall(labels_text or ""))
        key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")
        out[key] = value
    return out


def metric_sum(metrics: dict[str, float], name: str, **labels: str) -> float | None:
    """Sum of the samples of ``name`` whose labels include ``labels`` (``None`` when there is no such sample)."""
    total, seen = 0.0, False
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
            seen = True
    return total if seen else None


def _elapsed_ms(response: httpx.Response) -> float:
    try:
        return response.elapsed.total_seconds() * 1000
    except RuntimeError:  # transports that never set it (e.g. mocks)
        return 0.0


# --- retries of transient failures ----------------------------------------------------------------------------

# What a proxy or a restarting service answers for a moment; anything else is the service's real answer.
RETRY_STATUSES = frozenset({502, 503, 504})
# POSTs that change nothing: asking for recommendations, or for their validation.
READ_POSTS = frozenset({"/v1/recommend", "/v1/recommend/validate"})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter (a uniform pause up to ``base * 2**n``, at most ``cap``), within the
    call's overall deadline: a retry that could not finish before it is not started."""

    base: float = 0.1
    cap: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def pause(self, attempt: int, retry_after: str | None = None) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt - 1, 64))  # the exponent bounded: no float overflow
        pause = self.rng.uniform(0, ceiling)
        with contextlib.suppress(TypeError, ValueError):  # Retry-After in seconds; a date or garbage is ignored
            pause = max(pause, min(self.cap, float(retry_after)))  # type: ignore[arg-type]
        return pause


def may_retry(method: str, path: str, headers: Mapping[str, Any]) -> bool:
    """A request that is safe to send again: a read, or a write that carries ``If-Match`` (a conditional write cannot
    apply twice: the second answers 409 once the first has applied). Any other write is sent once."""
    return (method in ("GET", "HEAD") or (method == "POST" and path in READ_POSTS)
            or any(name.lower() == "if-match" for name in headers))


def _transient(exc: BaseException) -> bool:
    """A connection reset or closed before the answer: the peer may answer the next time. A refused connection
    (nothing listens) and a timeout (the peer is slow) are not retried: they fail at once, or by the deadline."""
    return isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError)


def _tries(attempts: int, started: float) -> str:
    return f" (after {attempts} tries in {time.monotonic() - started:.1f}s)" if attempts > 1 else ""


# --- client ----------------------------------------------------------------------------------------------------


class ServiceClient:
    """One connection to one deployment's service; use as a context manager or call :meth:`close`.

    ``transport`` lets tests plug in ``httpx.MockTransport``. ``actor`` is sent as ``X-Actor`` on admin writes so
    that the service's audit log names the person, not only the key.
    """

    def __init__(self, target: Target, transport: httpx.BaseTransport | None = None, *, actor: str | None = None):
        self.target = target
        self.base_url = target.require_service()
        self.actor = actor
        self.last_request_id: str | None = None
        self.retry = RetryPolicy()
        # How many tries the last call took (1 unless a transient failure was retried), and a note for messages.
        self.last_attempts = 1
        self._tries_note = ""
        _import_httpx()
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(target.timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "recsys-checks", "Accept": "application/json, application/problem+json"},
        )

    def __repr__(self) -> str:
        return f"ServiceClient(base_url={self.base_url!r}, api_key_set={self.target.api_key is not None})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --

    def _headers(self, tenant: str | None, admin: bool) -> dict[str, Any]:
        import uuid  # imported with the first request: it brings platform, which a registry reader never needs

        request_id = "runbook-" + uuid.uuid4().hex
        self.last_request_id = request_id
        headers: dict[str, Any] = {"X-Request-Id": request_id}
        if tenant is not None:
            headers["X-Org-Id"] = header_value(tenant, "tenant")
        if admin:
            # The key goes to the admin API only: health and recommendation endpoints never need it, and a peer
            # that echoes request headers must not be able to show it.
            if not self.target.api_key:
                raise BadInput("the admin API needs an API key: set RECSYS_API_KEY in the environment (never a "
                               "parameter)")
            problem = credential_problem(self.target.api_key, "RECSYS_API_KEY")
            if problem:  # refused here: the HTTP library would quote the value in its error
                raise BadInput(problem)
            headers["X-API-Key"] = self.target.api_key
            if self.actor:
                headers["X-Actor"] = header_value(self.actor, "actor (RECSYS_ACTOR)")
        return headers

    def _send(
        self,
        method: str,
        path: str,
        *,
        tenant: str | None = None,
        admin: bool = False,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        headers = self._headers(tenant, admin)
        if extra_headers:
            headers.update(extra_headers)
        content = None if json_body is None else jsonio.dumps(json_body, ensure_ascii=False).encode("utf-8")
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            request = self._client.build_request(method, path, headers=headers, content=content, params=params)
        except (httpx.InvalidURL, ValueError) as exc:
            raise BadInput(f"cannot build a request to {self.base_url}{path}: {self.target.redact(str(exc))}") from None
        seconds = self.target.deadline

        def too_slow() -> Unreachable:
            return Unreachable(
                f"service at {self.base_url} answered too slowly: {method} {path} did not finish within "
                f"{seconds:g}s; it is up but slow, often because it waits on a dependency (object store, admin "
                "database): run `recsys-checks health`, and check its load and the network in between"
            )

        try:
            return self._send_retrying(request, seconds, too_slow, may_retry(method, path, headers) and retry)
        except httpx.TransportError as exc:
            reason = (self.target.redact(str(exc)) or type(exc).__name__) + self._tries_note
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and self.last_attempts == 1:
                raise Unreachable(
                    f"service at {self.base_url} did not answer: {type(exc).__name__}: {reason}; "
                    "check RECSYS_BASE_URL / is the service up?", sent=False,
                ) from None
            raise Unreachable(
                f"service at {self.base_url} accepted the connection but gave no complete answer "
                f"({type(exc).__name__}: {reason}); it may be waiting on a dependency (object store, admin database): "
                "run `recsys-checks health`",
            ) from None
        except httpx.RequestError as exc:  # an answer that cannot be decoded (bad Content-Encoding, ...)
            reason = self.target.redact(str(exc)) or type(exc).__name__
            raise ServiceProblem(
                0, None, f"unreadable answer ({type(exc).__name__}: {reason}); check that RECSYS_BASE_URL points at "
                "recsys-service and not at a proxy or another application", None, method=method, path=path,
            ) from None

    def _send_retrying(self, request: httpx.Request, seconds: float, too_slow: Any, retry: bool) -> httpx.Response:
        """Send ``request``; when ``retry``, send it again after a transient failure (502, 503, 504, a reset
        connection), pausing with backoff and jitter, as long as the call's overall deadline of ``seconds`` allows.
        The last answer (or failure) is the call's; ``last_attempts`` says how many tries it took."""
        started = time.monotonic()
        ends = started + seconds
        attempt = 0
        while True:
            attempt += 1
            self.last_attempts = attempt
            try:
                response = deadline.run(lambda: self._read(request), max(ends - time.monotonic(), 0.0), too_slow)
            except httpx.TransportError as exc:
                self._tries_note = _tries(attempt, started)
                if not (retry and _transient(exc) and self._pause(attempt, ends)):
                    raise
                continue
            self._tries_note = _tries(attempt, started)
            if not (retry and response.status_code in RETRY_STATUSES
                    and self._pause(attempt, ends, response.headers.get("Retry-After"))):
                return response

    def _pause(self, attempt: int, ends: float, retry_after: str | None = None) -> bool:
        """Sleep before the next try; False (no sleep) when that try could not start before the deadline."""
        pause = self.retry.pause(attempt, retry_after)
        # Room for the next try to be answered: a try that would be cut by the deadline at once is not started.
        if time.monotonic() + pause >= ends - min(self.target.timeout, 1.0, self.target.deadline / 4):
            return False
        time.sleep(pause)
        return True

    def _read(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read at most MAX_ANSWER_BYTES of its (decoded) answer."""
        started = time.monotonic()
        response = self._client.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise ServiceProblem(
                        response.status_code, None, f"the answer is larger than {MAX_ANSWER_BYTES} bytes; check that "
                        "RECSYS_BASE_URL points at recsys-service", response.headers.get("X-Request-Id"),
                        method=request.method, path=request.url.path,
                    )
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
        answer = httpx.Response(response.status_code, headers=headers, content=bytes(body), request=request)
        answer.elapsed = timedelta(seconds=time.monotonic() - started)
        return answer

    @staticmethod
    def _json(response: httpx.Response, exact: bool = False) -> Any:
        """The answer's JSON (``None`` if it is not JSON); ``exact`` keeps numbers as written (admin documents)."""
        try:
            return jsonio.loads_exact(response.content) if exact else jsonio.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            return None

    def _problem(self, response: httpx.Response, method: str, path: str) -> ServiceProblem:
        body = self._json(response)
        request_id = response.headers.get("X-Request-Id") or self.last_request_id
        if isinstance(body, dict) and ("code" in body or "title" in body or "detail" in body):
            detail = self.target.redact(str(body.get("detail") or body.get("title") or response.reason_phrase))
            detail += self._tries_note
            return ServiceProblem(
                response.status_code,
                body.get("code"),
                detail,
                body.get("request_id") or request_id,
                method=method,
                path=path,
                title=str(body.get("title") or ""),
            )
        snippet = " ".join(self.target.redact(response.text).split())[:160] if response.content else ""
        detail = response.reason_phrase + (f" ({snippet})" if snippet else "") + self._tries_note
        return ServiceProblem(response.status_code, None, detail, request_id, method=method, path=path)

    def _call(self, method: str, path: str, *, exact: bool = False, **kwargs: Any) -> tuple[Any, httpx.Response]:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._problem(response, method, path)
        self._refuse_redirect(response, method, path)
        body = self._json(response, exact)
        if body is None and response.content:
            raise self._garbage(response, method, path, "is not JSON")
        return body, response

    def _refuse_redirect(self, response: httpx.Response, method: str, path: str) -> None:
        """A redirect is no answer of the API (a login portal, a proxy, another address): unusable, as an HTML page
        is, and never followed (the key would go where it points)."""
        if not 300 <= response.status_code < 400:
            return
        location = response.headers.get("Location")
        where = f"a redirect to {self.target.redact(location)[:160]}" if location else "a redirect that names no place"
        raise self._garbage(response, method, path, f"is {where}, which is not followed")

    def _garbage(self, response: httpx.Response, method: str, path: str, what: str) -> ServiceProblem:
        """A success status with a body the API never sends (an HTML page from a proxy or a login portal...)."""
        kind = response.headers.get("Content-Type") or "no Content-Type"
        snippet = " ".join(self.target.redact(response.text).split())[:80] if response.content else ""
        detail = (f"{response.status_code} answer {what} ({kind}{': ' + snippet if snippet else ''}); check that "
                  "RECSYS_BASE_URL points at recsys-service and not at a proxy or another application")
        return ServiceProblem(response.status_code, None, detail,
                              response.headers.get("X-Request-Id") or self.last_request_id, method=method, path=path)

    def _answer(self, path: str, *, tenant: str | None = None) -> Answer:
        # A 503 here is the answer (``/readyz``: not ready), not a failure to get one: asked once.
        response = self._send("GET", path, tenant=tenant, retry=False)
        body = self._json(response)
        if body is None and response.content:
            body = response.text
        return Answer(
            status=response.status_code,
            body=body,
            request_id=response.headers.get("X-Request-Id") or self.last_request_id,
            path=path,
            elapsed_ms=_elapsed_ms(response),
            headers={k: v for k, v in response.headers.items() if k.lower() in ("content-type", "x-request-id")},
            attempts=self.last_attempts,
        )

    # -- health --

    def healthz(self) -> Answer:
        """``GET /healthz`` (liveness): any status is returned, not raised."""
        return self._answer("/healthz")

    def readyz(self) -> Answer:
        """``GET /readyz`` (readiness): 200, or 503 when a dependency check fails."""
        return self._answer("/readyz")

    def health_detailed(self) -> Answer:
        """``GET /health/detailed`` (per-check status), falling back to ``/health`` on versions that lack it."""
        answer = self._answer("/health/detailed")
        if answer.status == 404:
            answer = self._answer("/health")
        return answer

    def metric_families(self) -> set[str]:
        """The metric names ``/metrics`` declares (``# TYPE`` lines), whether or not they have samples yet."""
        response = self._send("GET", "/metrics")
        if response.status_code >= 400:
            raise self._problem(response, "GET", "/metrics")
        self._refuse_redirect(response, "GET", "/metrics")
        return {line.split()[2] for line in response.text.splitlines()
                if line.startswith("# TYPE ") and len(line.split()) >= 4}

    def metrics(self) -> dict[str, float]:
        """``GET /metrics`` parsed into ``{name{labels}: value}``."""
        response = self._send("GET", "/metrics")
        if response.status_code >= 400:
            raise self._problem(response, "GET", "/metrics")
        self._refuse_redirect(response, "GET", "/metrics")
        return parse_metrics(response.text)

    # -- recommendations --

    @staticmethod
    def recommend_body(surface: str, *, user_id: str, k: int | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"surface": surface, "user": {"user_id": user_id}}
        if k is not None:
            body["k"] = k
        body.update({key: value for key, value in extra.items() if value is not None})
        return body

    def recommend(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/recommend``; returns the response document (``items``, ``meta``, ``warnings``)."""
        safe_segment(tenant, "tenant")
        data, response = self._call("POST", "/v1/recommend", tenant=tenant, json_body=body)
        items = data.get("items") if isinstance(data, dict) else None
        if (
            not isinstance(items, list)
            or not all(isinstance(i, dict) for i in items)
            or not isinstance(data.get("meta", {}), dict)
            or not isinstance(data.get("warnings") or [], list)
        ):
            # Never read as "no recommendations": that would send on-call after the manifest for nothing.
            raise self._garbage(response, "POST", "/v1/recommend", "is not a recommendation response")
        return data

    def validate(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/recommend/validate``: the normalised request and warnings, without ranking."""
        safe_segment(tenant, "tenant")
        data, _ = self._call("POST", "/v1/recommend/validate", tenant=tenant, json_body=body)
        return data if isinstance(data, dict) else {}

    # -- admin --

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in ADMIN_KINDS:
            raise BadInput(f"unknown admin document {kind!r}: use one of {', '.join(ADMIN_KINDS)}")
        return kind

    def get_doc(self, tenant: str, kind: str) -> tuple[Any, str]:
        """The tenant's current config or rules document and its version (the bare-hex ``ETag``)."""
        t, k = safe_segment(tenant, "tenant"), self._kind(kind)
        path = f"/v1/admin/tenants/{_path_segment(t)}/{k}"
        body, response = self._call("GET", path, tenant=t, admin=True, exact=True)
        if not isinstance(body, dict) or k not in body:
            # The API wraps the document ({"tenant_id", "<kind>_version", "<kind>"}): anything else is not its answer.
            raise self._garbage(response, "GET", path, f"is not a {k} document")
        version = bare_etag(response.headers.get("ETag")) or body.get(f"{k}_version")
        return body.get(k), str(version or "")

    def put_doc(self, tenant: str, kind: str, doc: Any, if_match: str | None) -> tuple[Any, str]:
        """Replace the document, only if its current version is ``if_match`` (bare hex); 409 otherwise."""
        t, k = safe_segment(tenant, "tenant"), self._kind(kind)
        extra = {"If-Match": bare_etag(if_match) or ""} if if_match else None
        try:
            body, response = self._call(
                "PUT", f"/v1/admin/tenants/{_path_segment(t)}/{k}", tenant=t, admin=True, json_body=doc,
                extra_headers=extra, exact=True,
            )
        except ServiceProblem as problem:
            return self._settled_put(problem, t, k, doc)
        body = body if isinstance(body, dict) else {}
        version = bare_etag(response.headers.get("ETag")) or body.get(f"{k}_version")
        return body.get(k, doc), str(version or "")

    def _settled_put(self, problem: ServiceProblem, tenant: str, kind: str, doc: Any) -> tuple[Any, str]:
        """A 409 to a conditional PUT that was sent again: an earlier try may have applied, its answer lost. When the
        current document is the one sent, that try applied it, and this is the write's result; else the 409 stands."""
        attempts = self.last_attempts
        if problem.status != 409 or attempts < 2:
            raise problem
        current, version = self.get_doc(tenant, kind)
        self.last_attempts = attempts
        if jsonio.dumps(current, sort_keys=True) != jsonio.dumps(doc, sort_keys=True):
            raise problem
        return current, version

    def audit_page(
        self, tenant: str, *, limit: int = 100, before: str | None = None, before_id: Any = None
    ) -> dict[str, Any]:
        """One page of the tenant's admin audit log (newest first)."""
        t = safe_segment(tenant, "tenant")
        params: dict[str, Any] = {"limit": max(1, min(int(limit), AUDIT_PAGE_MAX))}
        if before is not None:
            params["before"] = before
        if before_id is not None:
            params["before_id"] = before_id
        body, _ = self._call("GET", f"/v1/admin/tenants/{_path_segment(t)}/audit", tenant=t, admin=True,
                             params=params, exact=True)
        return body if isinstance(body, dict) else {"entries": []}

    def audit(
        self,
        tenant: str,
        limit: int = 100,
        before: str | None = None,
        before_id: Any = None,
        *,
        max_entries: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every audit entry, newest first, following the keyset pages (``limit`` is the page size)."""
        yielded = 0
        seen: set[tuple[Any, Any]] = set()
        while True:
            page = self.audit_page(tenant, limit=limit, before=before, before_id=before_id)
            entries = page.get("entries") or []
            for entry in entries:
                yield entry
                yielded += 1
                if max_entries is not None and yielded >= max_entries:
                    return
            nxt = (page.get("next_before"), page.get("next_before_id"))
            if not entries or (nxt[0] is None and nxt[1] is None) or nxt in seen:
                return
            seen.add(nxt)
            before, before_id = nxt

    def invalidate(self, tenant: str, targets: Sequence[str], surface: str | None = None) -> dict[str, Any]:
        """``POST .../cache/invalidate`` for ``targets`` (popularity, config, rules), optionally one surface."""
        t = safe_segment(tenant, "tenant")
        body: dict[str, Any] = {"targets": list(targets)}
        if surface is not None:
            body["surface"] = safe_segment(surface, "surface")
        data, _ = self._call("POST", f"/v1/admin/tenants/{_path_segment(t)}/cache/invalidate", tenant=t, admin=True, json_body=body)
        return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def given_or_new_client(target: Target, client: ServiceClient | None, *,
                        actor: str | None = None) -> Iterator[ServiceClient]:
    """``with given_or_new_client(target, client) as c:`` — the caller's client as is (the caller closes it), or a
    new one for ``target`` that is closed when the block ends.

    ``actor`` applies to a new client only; a given client keeps its own.
    """
    if client is not None:
        yield client
        return
    with ServiceClient(target, actor=actor) as new:
        yield new
