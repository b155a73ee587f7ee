"""A peer on 127.0.0.1 in front of the service whose admin API misbehaves: every ``/v1/admin/`` request answers 503
(a gateway whose admin backend is down), or waits :data:`SLOW_SECONDS` before it is passed on. Everything else is
passed on as it is, so clients' requests still reach the service.

``with admin_peer(base_url, "503") as url:`` gives the peer's base URL for the time of the block.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

SLOW_SECONDS = 0.4
PROBLEM = (b'{"type":"about:blank","title":"Service Unavailable","status":503,'
           b'"detail":"the admin backend is unavailable","code":"RECSYS_INTERNAL"}')
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


def _handler(upstream: str, mode: str) -> type[BaseHTTPRequestHandler]:
    class Peer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the test output is the runbooks'
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/v1/admin/"):
                if mode == "503":
                    self._answer(503, {"Content-Type": "application/problem+json"}, PROBLEM)
                    return
                time.sleep(SLOW_SECONDS)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            try:
                with httpx.Client(timeout=30.0, trust_env=False) as client:
                    answer = client.request(self.command, upstream + self.path, headers=headers, content=body)
            except httpx.HTTPError:
                self._answer(502, {"Content-Type": "text/plain"}, b"bad gateway")
                return
            self._answer(answer.status_code, {k: v for k, v in answer.headers.items() if k.lower() not in _HOP},
                         answer.content)

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    return Peer


@contextmanager
def admin_peer(upstream: str, mode: str) -> Iterator[str]:
    """A peer in front of ``upstream`` whose admin API answers ``mode`` ("503" or "slow"); its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream.rstrip("/"), mode))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
