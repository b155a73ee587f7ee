"""kill -9 at a chosen point of a fix: the one harness of the crash tests and the soak.

:func:`arm` patches this process so that it kills itself (SIGKILL: no cleanup, no ``finally``) at ``point``:

- ``before-intent``: when an audit intent is about to be written (nothing written yet);
- ``before-swap``: when the manifest is about to be replaced (the intent is written);
- ``after-swap``: right after the manifest was replaced (its audit record not yet completed);
- ``after-invalidation``: right after the service's cache was invalidated.

Used three ways: a child process running :data:`CHILD_PRELUDE` then its own code (tests/checks_registry's crash
test, bench/soak.py), and every Python process of a runbook run through ``crashhook/sitecustomize.py``, which arms
the point named by ``CRASH_POINT``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

POINTS = ("before-intent", "before-swap", "after-swap", "after-invalidation")
POINT_ENV = "CRASH_POINT"
HERE = Path(__file__).resolve().parent
HOOK = HERE / "runbooks" / "crashhook"  # a sitecustomize that arms CRASH_POINT in every Python process


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    """Kill this process at ``point`` (one of :data:`POINTS`) of whatever fix it runs."""
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}: one of {', '.join(POINTS)}")
    from recsys_checks.reach import service, store

    put = store.TargetStores.put

    def crashing_put(self, uri, data, **kwargs):
        if point == "before-intent" and uri.endswith(".intent.json"):
            die()
        if point == "before-swap" and uri.endswith("/manifest.json"):
            die()
        etag = put(self, uri, data, **kwargs)
        if point == "after-swap" and uri.endswith("/manifest.json"):
            die()
        return etag

    store.TargetStores.put = crashing_put
    invalidate = service.ServiceClient.invalidate

    def crashing_invalidate(self, *args, **kwargs):
        answer = invalidate(self, *args, **kwargs)
        if point == "after-invalidation":
            die()
        return answer

    service.ServiceClient.invalidate = crashing_invalidate


def arm_from_env() -> None:
    """Arm the point ``CRASH_POINT`` names, if any."""
    point = os.environ.get(POINT_ENV)
    if point:
        arm(point)


# The start of a child's ``python -c`` code: this module importable, then ``crashkit`` imported.
CHILD_PRELUDE = f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport crashkit\n"


def child_argv(code: str, *args: str) -> list[str]:
    """``python -c`` of :data:`CHILD_PRELUDE` and ``code``, with ``args`` as ``sys.argv[1:]``."""
    return [sys.executable, "-c", CHILD_PRELUDE + code, *args]


def hook_env(env: dict[str, str], point: str) -> dict[str, str]:
    """``env`` for a run whose every Python process dies at ``point`` (the crash hook and this module importable)."""
    path = os.pathsep.join(filter(None, [str(HOOK), str(HERE), env.get("PYTHONPATH")]))
    return {**env, POINT_ENV: point, "PYTHONPATH": path}
