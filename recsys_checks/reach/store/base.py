"""What every object store offers: read with an ETag, compare-and-swap writes, listing; and the ETag itself.

ETags are the quoted MD5 hex of the content on both stores (what S3 returns for a single-part upload), so that a
state token seen on one store means the same thing on the other.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TypeVar

from recsys_checks.reach import deadline

T = TypeVar("T")



DEFAULT_DEADLINE = deadline.DEFAULT_DEADLINE



# The suite's writer leaves objects readable by a service running as another user, whatever the umask.
FILE_MODE = 0o644



DIR_MODE = 0o755



# What one object may weigh: the suite's RECSYS_ARTIFACT_MAX_BYTES default. Nothing larger is read.
MAX_OBJECT_BYTES = 10_000_000



def etag_of(data: bytes) -> str:
    """The ETag the stores give ``data``: quoted MD5 hex (S3 single-part semantics).

    Format twin of ``recsys_stack.objstore.etag_of``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'



def same_etag(a: str | None, b: str | None) -> bool:
    """Whether two ETags name the same content, quoted or not (stores and proxies differ on the quotes)."""
    return a is not None and b is not None and a.strip('"') == b.strip('"')



class ObjectStore(ABC):
    """One kind of object store (files, S3): get, put (with compare-and-swap), list and test objects by URI."""

    scheme: str

    @abstractmethod
    def get(self, uri: str) -> tuple[bytes, str]:
        """Return ``(content, etag)``; raise :class:`NotFound` when the object does not exist."""

    def read(self, uri: str) -> bytes:
        """The content :meth:`get` gives, for a caller that needs no ETag (a store that has it free may skip it)."""
        return self.get(uri)[0]

    @abstractmethod
    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write ``data`` and return its ETag.

        ``if_match``: only replace the object whose ETag is this one; ``if_none_match``: only create. A failed
        precondition raises :class:`Conflict` and changes nothing.
        """

    @abstractmethod
    def list(self, prefix_uri: str) -> list[str]:
        """URIs of every object whose key starts with ``prefix_uri`` (recursively), sorted."""

    def walk(self, prefix_uri: str) -> Iterator[str]:
        """Keys of every object under ``prefix_uri``, relative to it, in key order; lazily where the store pages."""
        for uri in self.list(prefix_uri):
            yield uri[len(prefix_uri):]

    @abstractmethod
    def children(self, prefix_uri: str) -> list[str]:
        """Names of the immediate "directories" under ``prefix_uri`` (which should end with ``/``), sorted."""

    @abstractmethod
    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""

    def close(self) -> None:
        """Release connections (a no-op for files)."""
        return None

    def __enter__(self) -> ObjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
