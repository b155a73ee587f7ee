"""Every exception the package raises, each carrying the exit code of the CLI contract as its class attribute.

Exit codes: 0 healthy / done, 1 check failed or not recovered, 2 bad input or configuration, 3 conflict. A front end
(``recsys-checks``, the alert receiver) turns an error it catches into ``exc.exit_code`` and never keeps its own
mapping. Only this module defines exception classes (``tests/checks_cli/test_error_tree.py`` holds it to that).

The tree::

    Exception
    ├── ChecksError (2)              a failure the operator must act on, in one line
    │   ├── BadInput (2)             unsafe name, unknown version, malformed document, missing configuration
    │   │   ├── Unreadable (2)       a file named by a parameter could not be read
    │   │   └── ConfigError (2)      a setting that stops the alert receiver before it starts
    │   ├── Unreachable (2)          the service or the store did not answer
    │   ├── ServiceProblem (1)       the service answered an error; the instance's code follows the status
    │   ├── Unhealthy (1)            the target answered, but what it answered is broken
    │   │   ├── NotFound (1)         the object is not there
    │   │   └── InvalidObject (1)    the object cannot be a document
    │   ├── Conflict (3)             the world changed since the plan was made; nothing was changed
    │   ├── OutputRefused (1)        a runbook run's outputs would carry a secret; nothing was written
    │   ├── RecordNotWritten (1)     a runbook run's record could not be written
    │   └── UndeclaredCause (1)      a diagnosis named a cause its runbook's decision table does not declare
    └── ValueError
        ├── BadPayload (2)           a webhook body that is not Alertmanager's version 4 (the receiver answers 400)
        └── LineError (2)            one line of an evaluation log breaks its contract (reported as a bad line)
"""

from __future__ import annotations


class ChecksError(Exception):
    """A failure the operator must act on; the message names the thing and the fix, in one line."""

    exit_code = 2


class BadInput(ChecksError):
    """Unsafe tenant or surface, unknown version, malformed document, missing configuration."""

    exit_code = 2


class Unreadable(BadInput):
    """A file named by a parameter could not be opened or read (missing, refused, not a regular file): nothing is
    known about what it holds. A runbook step reports it as not read, never as a finding about its content."""

    exit_code = 2


class ConfigError(BadInput):
    """A setting that stops the alert receiver before it starts (``recsys-checks alerts serve``, exit 2)."""

    exit_code = 2


class Unreachable(ChecksError):
    """The service or the object store did not answer (connection refused, timeout, DNS).

    ``sent`` is False when the request certainly never reached the peer (no connection was made), so an action
    knows that nothing was changed.
    """

    exit_code = 2

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class ServiceProblem(ChecksError):
    """The service answered with an error (problem+json, or any non-success status).

    ``status`` is the HTTP status, ``code`` the problem code such as ``RECSYS_ARTIFACT_INCOMPATIBLE`` (``None`` when
    the body was not problem+json, e.g. an HTML page from a proxy), ``detail`` the service's explanation and
    ``request_id`` the id to search for in the service's logs.

    The class's exit code is 1 (the service is broken); an instance's follows its status (:func:`service_exit_code`):
    3 for 409 (a conflict), 2 for a request the service refused as bad or not allowed (400, 401, 403, 404, 422).
    """

    exit_code = 1

    def __init__(
        self,
        status: int,
        code: str | None,
        detail: str,
        request_id: str | None,
        *,
        method: str = "",
        path: str = "",
        title: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.method = method
        self.path = path
        self.title = title
        self.exit_code = service_exit_code(status, code)
        super().__init__(self._message())

    def _message(self) -> str:
        what = f"{self.method} {self.path}".strip() or "request"
        if self.status < 400:  # the call succeeded at the HTTP level, but the body is not what the API answers
            rid = f" (request id {self.request_id})" if self.request_id else ""
            return f"service gave an unusable answer to {what}: {self.detail}{rid}"
        code = f" {self.code}" if self.code else ""
        hint = ""
        if self.status == 401 or self.code in ("RECSYS_AUTH_REQUIRED", "RECSYS_AUTH_INVALID"):
            hint = "; set RECSYS_API_KEY to a valid key for this deployment"
        elif self.code == "RECSYS_TENANT_SCOPE_MISMATCH" or self.status == 403:
            hint = "; the API key is not allowed for this tenant"
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"service answered {self.status}{code} to {what}: {self.detail}{rid}{hint}"

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "code": self.code, "detail": self.detail, "request_id": self.request_id}

    def __repr__(self) -> str:
        return f"ServiceProblem(status={self.status}, code={self.code!r}, request_id={self.request_id!r})"


def service_exit_code(status: int, code: str | None) -> int:
    """The exit code of a service's error answer: 3 for a conflict (409), 2 for a request refused as bad or not
    allowed (400, 401, 403, 404, 422; an incompatible artifact aside, which is the service's state), else 1."""
    if status == 409:
        return 3
    if status in (400, 401, 403, 404, 422) and code != "RECSYS_ARTIFACT_INCOMPATIBLE":
        return 2
    return 1


class Unhealthy(ChecksError):
    """The target answered, but what it answered is broken (used where a check cannot return a result)."""

    exit_code = 1


class NotFound(Unhealthy):
    """The store answered, but the object (manifest, record, blob) is not there."""

    exit_code = 1


class InvalidObject(Unhealthy):
    """The store answered, but the object cannot be a document: not a regular file, or larger than the limit.

    ``etag`` is a token of what is there now, so that a repair can still compare-and-swap against it.
    """

    exit_code = 1

    def __init__(self, message: str, etag: str) -> None:
        super().__init__(message)
        self.etag = etag


class Conflict(ChecksError):
    """The world changed since the plan was made; nothing was changed."""

    exit_code = 3


class OutputRefused(ChecksError):
    """A runbook run's outputs would carry a secret: nothing is written (exit 1, the run failed)."""

    exit_code = 1


class RecordNotWritten(ChecksError):
    """The run record could not be written (a full disk, its folder gone): exit 1, as for an action whose audit
    record could not be written. The message lists every change the run applied, and where its audit record is."""

    exit_code = 1


class BadPayload(ValueError):
    """The alert receiver's webhook body is not Alertmanager's version 4: one line naming what is wrong. The
    receiver answers it with 400; the exit code is that of bad input, for a caller that ends on it."""

    exit_code = 2


class LineError(ValueError):
    """What is wrong with one line of an evaluation log, in a few words (the caller adds file and line number).
    The check reports it as a bad line of its result; the exit code is that of bad input, for a caller that ends
    on it."""

    exit_code = 2


class UndeclaredCause(ChecksError):
    """A runbook's diagnosis named a cause its decision table does not declare: a defect of the runbook, which
    would otherwise report a cause its page never shows. The run fails (verdict ``failed``) instead."""

    exit_code = 1
