"""Admin endpoints: config and rules with ETag / If-Match, the audit log, cache invalidation."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..formats import dumps_document, loads_document
from .adminstore import (
    DEFAULT_AUDIT_LIMIT,
    MAX_AUDIT_LIMIT,
    DatabaseUnavailable,
    DocumentNotFound,
    TenantNotFound,
    VersionMismatch,
    parse_timestamp,
)
from .documents import InvalidDocument, validate_config, validate_rules_document
from .problems import Problem, internal, invalid_request, request_id_of
from .recommend_request import safe_segment, surface_name
from .runtime import CACHE_TARGETS, ServiceRuntime, actor_for, header_text

_NOT_FOUND_CODES = {"config": "RECSYS_CONFIG_NOT_FOUND", "rules": "RECSYS_RULES_NOT_FOUND"}
_INVALID_CODES = {"config": "RECSYS_INVALID_CONFIG", "rules": "RECSYS_INVALID_RULES"}


class DocumentResponse(JSONResponse):
    """A JSON answer whose admin documents keep their numbers as written (``0.70`` stays ``0.70``)."""

    def render(self, content: Any) -> bytes:
        return dumps_document(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


def authorize(request: Request) -> tuple[ServiceRuntime, str, str]:
    """Check the API key and the tenant scope; return (runtime, tenant, api key)."""
    runtime = _runtime(request)
    key = runtime.check_api_key(request.headers, required=True)
    assert key is not None
    tenant = request.path_params["tenant_id"]
    scope = header_text(request.headers, "x-org-id")
    if scope is not None and scope != tenant:
        raise Problem(
            403,
            "RECSYS_TENANT_SCOPE_MISMATCH",
            f"X-Org-Id {scope!r} does not match the tenant {tenant!r} in the path: send the same tenant in both",
        )
    try:
        safe_segment(tenant, "tenant")
    except Problem:
        raise Problem(404, "RECSYS_TENANT_NOT_FOUND", f"tenant {tenant!r} does not exist") from None
    return runtime, tenant, key


def _store_call(func: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except TenantNotFound as exc:
        raise Problem(404, "RECSYS_TENANT_NOT_FOUND", str(exc)) from exc
    except DatabaseUnavailable as exc:
        raise internal(str(exc)) from exc


def _document_body(kind: str, tenant: str, doc: Any, version: str) -> dict[str, Any]:
    return {"tenant_id": tenant, f"{kind}_version": version, kind: doc}


async def get_document(request: Request) -> Response:
    kind = request.url.path.rsplit("/", 1)[1]
    runtime, tenant, _key = authorize(request)
    try:
        doc, version = await run_in_threadpool(_store_call, runtime.store.get, tenant, kind)
    except DocumentNotFound as exc:
        raise Problem(404, _NOT_FOUND_CODES[kind], str(exc)) from exc
    return DocumentResponse(_document_body(kind, tenant, doc, version), headers={"ETag": version})


async def put_document(request: Request) -> Response:
    kind = request.url.path.rsplit("/", 1)[1]
    runtime, tenant, key = authorize(request)
    invalid = _INVALID_CODES[kind]
    raw = await request.body()
    # The body is the document itself, as the suite takes it: never {"config": ...} (that would be stored as is).
    if not raw.strip():
        raise Problem(400, invalid, f"the body is empty: send the {kind} document itself as the body")
    try:
        doc = loads_document(raw)  # numbers kept as written, as jsonb keeps them
    except (ValueError, RecursionError) as exc:
        raise Problem(400, invalid, f"the body is not valid JSON: {exc}") from None
    try:
        if kind == "config":
            validate_config(doc)
        else:
            validate_rules_document(doc)
    except InvalidDocument as exc:
        raise Problem(422, invalid, str(exc)) from exc
    if_match = request.headers.get("if-match")
    if if_match is not None:
        if_match = if_match.strip()
    actor_sub, actor_type = actor_for(request.headers, key)

    def put() -> tuple[str, bool]:
        match = if_match
        if match == "*":
            # "*" means "whatever is current, as long as something is".
            try:
                match = runtime.store.get(tenant, kind)[1]
            except DocumentNotFound:
                match = "(none)"
        return runtime.store.put(
            tenant,
            kind,
            doc,
            actor_sub=actor_sub,
            actor_type=actor_type,
            request_id=request_id_of(request),
            if_match=match,
        )

    try:
        version, _changed = await run_in_threadpool(_store_call, put)
    except VersionMismatch as exc:
        raise Problem(409, "RECSYS_VERSION_MISMATCH", str(exc)) from exc
    return DocumentResponse(_document_body(kind, tenant, doc, version), headers={"ETag": version})


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid_request(f"query parameter {name}={value!r} is not an integer") from None


async def get_audit(request: Request) -> Response:
    runtime, tenant, _key = authorize(request)
    limit = _int_param(request, "limit")
    if limit is None:
        limit = DEFAULT_AUDIT_LIMIT
    if limit < 1:
        raise invalid_request(f"limit={limit}: use 1 to {MAX_AUDIT_LIMIT}")
    before = request.query_params.get("before") or None
    if before is not None:
        try:
            parse_timestamp(before)
        except ValueError:
            raise invalid_request(
                f"before={before!r} is not an RFC 3339 timestamp such as 2026-01-02T00:00:00Z"
            ) from None
    before_id = _int_param(request, "before_id")
    page = await run_in_threadpool(_store_call, runtime.store.audit, tenant, limit, before, before_id)
    return DocumentResponse(page.to_dict(tenant))


async def invalidate_cache(request: Request) -> Response:
    runtime, tenant, key = authorize(request)
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:  # nested past the parser is as invalid as a syntax error
        raise invalid_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid_request('the body must be an object like {"targets": ["popularity"], "surface": "home"}')
    unknown = sorted(set(body) - {"targets", "surface"})
    if unknown:
        raise invalid_request(f"unknown field(s) {', '.join(unknown)}: allowed are targets, surface")
    targets = body.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise Problem(400, "RECSYS_INVALID_TARGETS", f"targets must be a non-empty list of {', '.join(CACHE_TARGETS)}")
    unknown_targets = sorted(set(targets) - set(CACHE_TARGETS))
    if unknown_targets:
        raise Problem(
            422,
            "RECSYS_INVALID_TARGETS",
            f"unknown target(s) {', '.join(unknown_targets)}: use {', '.join(CACHE_TARGETS)}",
        )
    targets = list(dict.fromkeys(targets))
    surface = body.get("surface")
    if surface is not None:
        surface_name(surface)
    actor_sub, actor_type = actor_for(request.headers, key)

    def apply() -> dict[str, int]:
        runtime.require_tenant(tenant, cached=False)
        counts = runtime.invalidate(tenant, targets, surface)
        runtime.store.record_invalidation(
            tenant,
            targets=targets,
            surface=surface,
            invalidated=counts,
            actor_sub=actor_sub,
            actor_type=actor_type,
            request_id=request_id_of(request),
        )
        return counts

    counts = await run_in_threadpool(_store_call, apply)
    return JSONResponse(
        {"tenant_id": tenant, "targets": targets, "surface": surface, "status": "applied", "invalidated": counts}
    )
