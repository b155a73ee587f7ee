"""Misbehaving peers on 127.0.0.1: a server that trickles its answer, never answers, echoes the request, or
answers HTML. Each runs in a thread and is stopped (its sockets closed) when the test ends."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator


class Peer:
    """A TCP server on 127.0.0.1 that hands each connection to ``handle(conn, request_bytes)``."""

    def __init__(self, handle: Callable[[socket.socket, bytes, threading.Event], None]) -> None:
        self.handle = handle
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)
        self._accept.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.requests.append(head)
            self.handle(conn, head, self.stop)
        with contextlib.suppress(OSError):
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self._accept.join(2)
        self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        for t in self._threads:
            t.join(2)


@contextlib.contextmanager
def peer(handle: Callable[[socket.socket, bytes, threading.Event], None]) -> Iterator[Peer]:
    server = Peer(handle)
    try:
        yield server
    finally:
        server.close()


def trickle(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """One header line every 0.3 s, for up to 20 s: no single read ever times out."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    deadline = time.monotonic() + 20
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        conn.sendall(f"X-Slow-{n}: x\r\n".encode())
        n += 1
        stop.wait(0.3)


def silent(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """Accept the request and never answer."""
    stop.wait(20)


def echo(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """200 with a JSON body that repeats every request header (a debugging proxy, or a hostile peer)."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    body = json.dumps({"status": "ok", "checks": {"echo": {"status": "ok", "detail": " | ".join(lines)}},
                       "headers": lines}).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def html(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """200 with an HTML page on every path (a login portal or a web server)."""
    body = b"<!doctype html><html><body><h1>Welcome</h1></body></html>"
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def not_found_html(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """404 with an HTML page on every path (a web server where an S3 endpoint should be)."""
    body = b"<!doctype html><html><body>Not Found</body></html>"
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def xhtml(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """200 with a well-formed XHTML page: an XML parser reads it without error, as a listing with no keys."""
    body = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>Welcome</p></body>'
            b"</html>")
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def redirect(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """307 to another address on every path (a load balancer or a proxy in front of the store)."""
    conn.sendall(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                 b"Connection: close\r\nContent-Length: 0\r\n\r\n")


def found(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
    """302 to a login page on every path (a single sign-on portal in front of the service)."""
    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: https://login.example/sso?next=/\r\n"
                 b"Connection: close\r\nContent-Length: 0\r\n\r\n")
def reply(status: int, body: object = None, headers: dict[str, str] | None = None) -> bytes:
    """One HTTP/1.1 answer with a JSON body (problem+json for a status of 400 or more) that closes the connection."""
    data = json.dumps(body if body is not None else {"status": status, "code": None, "detail": f"status {status}"})
    kind = "application/problem+json" if status >= 400 else "application/json"
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {kind}", "Connection: close", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data.encode()


RESET = b""  # in a script: close the connection with a TCP reset instead of answering


def scripted(*answers: bytes, then: bytes | None = None) -> Callable[[socket.socket, bytes, threading.Event], None]:
    """A peer that gives its ``answers`` in turn, one per request (``RESET`` resets the connection), then ``then``
    for every later request (the last answer when not given)."""
    queue = list(answers)
    lock = threading.Lock()

    def handle(conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        with lock:
            answer = queue.pop(0) if queue else (then if then is not None else answers[-1])
        if answer == RESET:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        conn.sendall(answer)

    return handle
