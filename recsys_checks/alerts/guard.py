"""The receiver's connections: a deadline for a request's headers and a bound on connections still sending them.

uvicorn's h11 protocol bounds the size of a request's headers (``h11_max_incomplete_event_size``, 16 KiB) and closes
a keep-alive connection idle for ``timeout_keep_alive`` seconds, but that timer is reset by every byte received, and
nothing bounds how long the headers of a request may take; ``limit_concurrency`` counts every open connection, so
that a few hundred sockets that send a request line and ``Host:`` and nothing more make every real delivery a 503.

:class:`GuardedH11` is uvicorn's h11 protocol with two guards, so that Alertmanager's deliveries (whose headers
arrive at once) keep getting through while idle sockets are dropped:

- a **header deadline**: a connection whose request headers are not complete :data:`HEADER_TIMEOUT` seconds after
  it opened (or after its last answer, on a kept-alive connection) is answered 408 and closed, however slowly it
  trickles;
- a **bound per client address** (:data:`PER_ADDRESS`) and overall (:data:`PENDING`) on connections waiting for
  their headers: past it, the one of that address waiting the longest is closed to make room for the new one.

A connection whose headers are complete is out of the guard's hands: its body has its own deadline (the webhook's
408) and its answer is the application's.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0
PER_ADDRESS = 64
PENDING = 256
MAX_CONNECTIONS = 1024  # uvicorn's limit_concurrency: above what the guard lets wait for headers
_TOO_SLOW = f"the request headers did not arrive within {HEADER_TIMEOUT:g} s\n".encode()
TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
                  b"content-length: " + str(len(_TOO_SLOW)).encode() + b"\r\n\r\n" + _TOO_SLOW)


class Waiting:
    """The connections waiting for their request headers, oldest first, overall and per client address."""

    def __init__(self, per_address: int = PER_ADDRESS, total: int = PENDING) -> None:
        self.per_address = per_address
        self.total = total
        self.all: OrderedDict[Any, None] = OrderedDict()
        self.by_address: dict[str, OrderedDict[Any, None]] = {}
        self.dropped = 0

    def add(self, conn: Any, address: str) -> list[Any]:
        """Count ``conn`` as waiting; the connections to close to stay within the bounds (oldest first)."""
        mine = self.by_address.setdefault(address, OrderedDict())
        mine[conn] = None
        self.all[conn] = None
        evicted = []
        while len(mine) > self.per_address:
            evicted.append(next(iter(mine)))
            self.discard(evicted[-1], address)
        while len(self.all) > self.total:
            oldest = next(iter(self.all))
            evicted.append(oldest)
            self.discard(oldest, getattr(oldest, "guard_address", ""))
        self.dropped += len(evicted)
        return evicted

    def discard(self, conn: Any, address: str) -> None:
        self.all.pop(conn, None)
        mine = self.by_address.get(address)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_address[address]


WAITING = Waiting()


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with the header deadline and the per-address bound (see the module)."""

    waiting: Waiting = WAITING
    header_timeout: float = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard_address = self.client[0] if self.client else ""
        self.guard_timer: asyncio.TimerHandle | None = None
        self._wait_for_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.guard_timer is not None and self.conn.their_state is not h11.IDLE:
            self._headers_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._wait_for_headers()  # a kept-alive connection: the next request's headers have the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def _wait_for_headers(self) -> None:
        if self.guard_timer is not None:
            return
        self.guard_timer = self.loop.call_later(self.header_timeout, self._too_slow)
        for other in self.waiting.add(self, self.guard_address):
            other._close(None)

    def _headers_arrived(self) -> None:
        if self.guard_timer is not None:
            self.guard_timer.cancel()
            self.guard_timer = None
        self.waiting.discard(self, self.guard_address)

    def _too_slow(self) -> None:
        self.guard_timer = None
        self._close(TIMEOUT_ANSWER)

    def _close(self, answer: bytes | None) -> None:
        """Close a connection still waiting for its headers (nothing of it reached the application)."""
        self._headers_arrived()
        if self.transport.is_closing():
            return
        if answer is not None and self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(answer)
        self.transport.close()
