"""The local stack's S3 server (recsys_stack/s3server.py): moto's S3 backend, connections kept alive."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from recsys_stack.objstore import PreconditionFailed, S3Store

pytestmark = pytest.mark.subprocess  # each test starts the S3 server (python -m recsys_stack.s3server)


@pytest.fixture
def s3server() -> Iterator[str]:
    """``python -m recsys_stack.s3server`` on a free loopback port; stopped with SIGTERM at the end."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "recsys_stack.s3server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"s3server did not start: {proc.stderr.read().decode()}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_connections_are_kept_alive(s3server):
    """Several requests go over one connection, as with a real S3 endpoint (moto's own server closes each one)."""
    host, port = s3server.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/no-such-bucket/key")
            response = conn.getresponse()
            response.read()
            assert response.status in (403, 404) and not response.will_close
            sock = conn.sock
        assert sock is conn.sock
    finally:
        conn.close()


def test_it_is_the_s3_api_with_conditional_writes(s3server):
    """Create-only and replace-if-unchanged writes behave as on S3 (412 for a stale ETag or an existing key)."""
    objects = S3Store(s3server, "recsys-artifacts", "testing", "testing")
    try:
        objects.ensure_bucket()
        etag = objects.put("registry/x.json", b"1", if_none_match=True)
        with pytest.raises(PreconditionFailed):
            objects.put("registry/x.json", b"2", if_none_match=True)
        objects.put("registry/x.json", b"2", if_match=etag)
        with pytest.raises(PreconditionFailed):
            objects.put("registry/x.json", b"3", if_match=etag)
        assert objects.get("registry/x.json") == b"2"
    finally:
        objects.close()
