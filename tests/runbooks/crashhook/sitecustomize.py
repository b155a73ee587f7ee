"""Test-only: loaded by every Python process of a crash trial (PYTHONPATH), it kills the process at one point of a
fix when CRASH_POINT says so. Only the runbook's kernel writes to the store and calls the service's cache
invalidation, so only the kernel is killed."""

import os

_POINT = os.environ.get("CRASH_POINT")

if _POINT:
    import signal

    from recsys_checks.reach import service, store

    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    _put = store.TargetStores.put

    def _crashing_put(self, uri, data, **kwargs):
        if _POINT == "before-intent" and uri.endswith(".intent.json"):
            _die()
        if _POINT == "after-intent" and uri.endswith("/manifest.json"):
            _die()
        etag = _put(self, uri, data, **kwargs)
        if _POINT == "after-change" and uri.endswith("/manifest.json"):
            _die()
        return etag

    store.TargetStores.put = _crashing_put
    _invalidate = service.ServiceClient.invalidate

    def _crashing_invalidate(self, *args, **kwargs):
        answer = _invalidate(self, *args, **kwargs)
        if _POINT == "after-invalidation":
            _die()
        return answer

    service.ServiceClient.invalidate = _crashing_invalidate
