"""The ASGI app: routes, request ids, problem+json errors, health and recommendation endpoints.

Run with ``python -m uvicorn --factory recsys_stack.service.app:create_app --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import admin
from .adminstore import DatabaseUnavailable
from .artifacts import StoreUnavailable
from .problems import Problem, internal, invalid_request, problem_response, request_id_of
from .ranking import Catalog
from .runtime import ServiceRuntime, load_catalog
from .settings import Settings

log = logging.getLogger("recsys_stack.service")
# Any printable ASCII id a client or proxy sends is echoed (UUIDs, traceparent, "Root=1-..;Parent=..", "drill/42");
# only an empty, over-long or non-printable value is replaced by a generated one.
_REQUEST_ID = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$")
Handler = Callable[[Request], Awaitable[Response]]


class RequestIdMiddleware:
    """Echo ``X-Request-Id`` (or generate one) on every response and expose it as ``request.state.request_id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def guarded(handler: Handler) -> Handler:
    """Turn Problems into problem+json and anything unexpected into a 500 RECSYS_INTERNAL (logged)."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(request, problem)
        except Exception as exc:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return problem_response(request, internal(f"unexpected {type(exc).__name__}: {exc}"))

    return wrapper


def _runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise invalid_request(
            'the request body is empty: send JSON such as {"surface": "home", "user": {"user_id": "u1"}}'
        )
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # nested past the parser is as invalid as a syntax error
        raise invalid_request(f"the request body is not valid JSON: {exc}") from None


# -- health ------------------------------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _database_check(runtime: ServiceRuntime) -> dict[str, Any]:
    try:
        runtime.store.check()
    except DatabaseUnavailable as exc:
        return {"status": "fail", "detail": str(exc)}
    return {"status": "ok", "detail": f"sqlite {runtime.settings.db_path}"}


def _store_check(runtime: ServiceRuntime) -> dict[str, Any]:
    if not runtime.settings.artifact_mode_enabled:
        return {"status": "ok", "detail": "artifact mode disabled"}
    try:
        checked = runtime.artifacts.reader.check(runtime.settings.manifest_template)
    except StoreUnavailable as exc:
        return {"status": "fail", "detail": str(exc)}
    return {"status": "ok", "detail": checked}


async def readyz(request: Request) -> Response:
    database = await run_in_threadpool(_database_check, _runtime(request))
    ready = database["status"] == "ok"
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": {"database": database}},
        status_code=200 if ready else 503,
    )


async def health_detailed(request: Request) -> Response:
    runtime = _runtime(request)
    checks = {
        "database": await run_in_threadpool(_database_check, runtime),
        "artifact_store": await run_in_threadpool(_store_check, runtime),
    }
    healthy = all(check["status"] == "ok" for check in checks.values())
    return JSONResponse({"status": "ok" if healthy else "fail", "checks": checks}, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    runtime = _runtime(request)
    return Response(runtime.metrics.render(), media_type=runtime.metrics.content_type)


# -- recommendations ---------------------------------------------------------------------------------------------


def _measured(endpoint: str, handler: Callable[[ServiceRuntime, Any, Any, str], dict[str, Any]]) -> Handler:
    async def run(request: Request) -> Response:
        runtime = _runtime(request)
        started = time.perf_counter()
        status, empty = 500, False
        try:
            body = await _json_body(request)
            result = await run_in_threadpool(handler, runtime, request.headers, body, request_id_of(request))
            status, empty = 200, not result.get("items", [None])
            return JSONResponse(result)
        except Problem as problem:
            status = problem.status
            return problem_response(request, problem)
        except Exception as exc:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return problem_response(request, internal(f"unexpected {type(exc).__name__}: {exc}"))
        finally:
            runtime.metrics.observe_request(endpoint, status, empty, time.perf_counter() - started)

    return run


recommend = _measured("recommend", ServiceRuntime.recommend)
validate = _measured("validate", ServiceRuntime.validate)


# -- the app -----------------------------------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "RECSYS_NOT_FOUND", 405: "RECSYS_METHOD_NOT_ALLOWED"}.get(exc.status_code, "RECSYS_INVALID_REQUEST")
    detail = f"no endpoint {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    return problem_response(request, Problem(exc.status_code, code, detail), headers=exc.headers)


def create_app(settings: Settings | None = None, *, catalog: Catalog | None = None) -> Starlette:
    """Build the service; ``settings`` default to :meth:`Settings.from_env`, ``catalog`` to recsys_stack.catalog."""
    settings = settings or Settings.from_env()
    runtime = ServiceRuntime(settings, catalog if catalog is not None else load_catalog())
    tenant_path = "/v1/admin/tenants/{tenant_id}"
    routes = [
        Route("/healthz", guarded(healthz), methods=["GET"]),
        # Some suite versions only have /health; both answer liveness.
        Route("/health", guarded(healthz), methods=["GET"]),
        Route("/readyz", guarded(readyz), methods=["GET"]),
        Route("/health/detailed", guarded(health_detailed), methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/v1/recommend", recommend, methods=["POST"]),
        Route("/v1/recommend/validate", validate, methods=["POST"]),
        Route(tenant_path + "/config", guarded(admin.get_document), methods=["GET"]),
        Route(tenant_path + "/config", guarded(admin.put_document), methods=["PUT"]),
        Route(tenant_path + "/rules", guarded(admin.get_document), methods=["GET"]),
        Route(tenant_path + "/rules", guarded(admin.put_document), methods=["PUT"]),
        Route(tenant_path + "/audit", guarded(admin.get_audit), methods=["GET"]),
        Route(tenant_path + "/cache/invalidate", guarded(admin.invalidate_cache), methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.runtime = runtime
    app.add_middleware(RequestIdMiddleware)
    return app
