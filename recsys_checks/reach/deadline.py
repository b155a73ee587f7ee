"""An overall deadline for one network call, whatever the peer does.

Per-read timeouts do not bound a call: a peer that sends one header line every two seconds never lets a read time
out. So every call to the service or the object store runs in a worker thread and the caller waits at most
``seconds`` for it; past that, the caller gets the ``too_slow`` error and goes on (the worker is a daemon thread,
left to finish or fail on its own, and never holds the process open).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# What one call may take in all (connect, send, every byte of the answer). Commands make a few calls in sequence
# and stop at the first that fails, so a command against a peer that hangs ends after about this long.
DEFAULT_DEADLINE = 15.0


def run(fn: Callable[[], T], seconds: float, too_slow: Callable[[], Exception]) -> T:
    """``fn()``, or raise ``too_slow()`` when it has not returned or raised within ``seconds``."""
    box: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="recsys-checks-call", daemon=True).start()
    if not done.wait(seconds):
        raise too_slow()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
