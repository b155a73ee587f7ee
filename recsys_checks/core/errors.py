"""Errors that end a command, each carrying the exit code of the CLI contract.

Exit codes: 0 healthy / done, 1 check failed or not recovered, 2 bad input or configuration, 3 conflict.
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


class Unreachable(ChecksError):
    """The service or the object store did not answer (connection refused, timeout, DNS).

    ``sent`` is False when the request certainly never reached the peer (no connection was made), so an action
    knows that nothing was changed.
    """

    exit_code = 2

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class Unhealthy(ChecksError):
    """The target answered, but what it answered is broken (used where a check cannot return a result)."""

    exit_code = 1


class Conflict(ChecksError):
    """The world changed since the plan was made; nothing was changed."""

    exit_code = 3


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


class UndeclaredCause(ChecksError):
    """A runbook's diagnosis named a cause its decision table does not declare: a defect of the runbook, which
    would otherwise report a cause its page never shows. The run fails (verdict ``failed``) instead."""

    exit_code = 1
