"""Errors as ``application/problem+json`` with the suite's problem codes."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error the API reports to the client: HTTP status, suite problem code and a detail that names the fix."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")

    def body(self, instance: str, request_id: str) -> dict[str, Any]:
        return {
            "type": "urn:recsys:problem:" + self.code.lower(),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            "code": self.code,
            "request_id": request_id,
        }


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def problem_response(request: Request, problem: Problem, headers: dict[str, str] | None = None) -> Response:
    """Render ``problem`` for ``request`` (instance = request path)."""
    body = problem.body(request.url.path, request_id_of(request))
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def invalid_request(detail: str, status: int = 400) -> Problem:
    return Problem(status, "RECSYS_INVALID_REQUEST", detail)


def internal(detail: str) -> Problem:
    return Problem(500, "RECSYS_INTERNAL", detail)
