"""The local stand-in for recsys-service: an ASGI app with the suite's endpoints, formats and failure behaviour.

Start it with ``python -m uvicorn --factory recsys_stack.service.app:create_app``; it is configured by the
environment only (see :mod:`recsys_stack.service.settings`).
"""

from __future__ import annotations

__all__ = ["create_app", "Settings"]


def __getattr__(name: str) -> object:
    # Lazy so that importing the package (e.g. for AdminStore) does not pull in Starlette and boto3.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(name)
