"""Which store a URI names, and one store per scheme for one target: :class:`TargetStores`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from recsys_checks.core.errors import BadInput

from ..settings import Target
from .base import ObjectStore
from .files import FileStore
from .s3 import S3Store


def open_store(uri: str, target: Target, connections: int = 10) -> ObjectStore:
    """A store able to read and write ``uri`` (any object of the same scheme); close it when done.

    ``connections``: how many requests the caller keeps in flight at once (S3 keeps that many connections open).
    """
    if uri.startswith("file://"):
        return FileStore(lock_timeout=target.timeout, max_bytes=target.max_bytes)
    if uri.startswith("s3://"):
        return S3Store(
            target.s3_endpoint,
            target.s3_access_key,
            target.s3_secret_key,
            region=target.s3_region,
            timeout=target.timeout,
            deadline=target.deadline,
            max_bytes=target.max_bytes,
            connections=connections,
        )
    raise BadInput(f"unsupported object URI {uri!r}: use file:///absolute/path or s3://bucket/key")


def stores_for(target: Target, stores: TargetStores | None) -> tuple[TargetStores, bool]:
    """The caller's ``stores`` when given, else the target's own opened here; the flag says the caller opened them
    and must close them."""
    return (stores, False) if stores is not None else (TargetStores(target), True)


class TargetStores:
    """The object stores of a target: one open :class:`ObjectStore` per URI scheme, reused across many URIs (an S3
    client is costly to create), each call routed to the store of its URI's scheme."""

    def __init__(self, target: Target, *, connections: int = 10) -> None:
        self.target = target
        self.connections = connections
        self._open: dict[str, ObjectStore] = {}
        self._lock = threading.Lock()

    def for_uri(self, uri: str) -> ObjectStore:
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        store = self._open.get(scheme)  # open already: no lock needed to read it
        if store is not None:
            return store
        with self._lock:  # checks run in threads; one client per scheme
            if scheme not in self._open:
                self._open[scheme] = open_store(uri, self.target, self.connections)
            return self._open[scheme]

    def get(self, uri: str) -> tuple[bytes, str]:
        return self.for_uri(uri).get(uri)

    def read(self, uri: str) -> bytes:
        """The content without its ETag (see :meth:`ObjectStore.read`)."""
        return self.for_uri(uri).read(uri)

    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        return self.for_uri(uri).put(uri, data, if_match=if_match, if_none_match=if_none_match)

    def list(self, prefix_uri: str) -> list[str]:
        return self.for_uri(prefix_uri).list(prefix_uri)

    def walk(self, prefix_uri: str) -> Iterator[str]:
        return self.for_uri(prefix_uri).walk(prefix_uri)

    def children(self, prefix_uri: str) -> list[str]:
        return self.for_uri(prefix_uri).children(prefix_uri)

    def exists(self, uri: str) -> bool:
        return self.for_uri(uri).exists(uri)

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __enter__(self) -> TargetStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
