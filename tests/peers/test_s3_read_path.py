"""The S3 read path (recsys_checks/s3read.py): a signed GET on the client's HTTP session, which hands every answer
it does not interpret to the modelled call and never reads past the size limit."""

from __future__ import annotations

import contextlib
import time

import pytest

from recsys_checks.core.errors import InvalidObject, Unreachable
from recsys_checks.reach.store import S3Store, etag_of

from .peerkit import peer

BODY = b'{"schema_version": 1}'


def _answer(conn, status: bytes, body: bytes, headers: bytes = b"") -> None:
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n" + headers
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


@pytest.mark.stack  # moto's S3 server, as the s3 store of the registry tests
def test_an_ordinary_read_does_not_make_the_modelled_call(moto_endpoint):
    """A 200 from a real S3 API is read by the signed GET alone: get_object is never called."""
    with contextlib.closing(S3Store(moto_endpoint, "testing", "testing")) as store:
        store._client.create_bucket(Bucket="read-path")
        store.put("s3://read-path/a/manifest.json", BODY)

        def refuse(**_kwargs):
            raise AssertionError("the modelled get_object was called")

        store._client.get_object = refuse
        assert store.get("s3://read-path/a/manifest.json") == (BODY, etag_of(BODY))


@pytest.mark.parametrize("first", [b"503 Service Unavailable", b"301 Moved Permanently"], ids=["503", "301"])
def test_an_answer_the_read_path_does_not_interpret_goes_to_the_modelled_call(first):
    """A 5xx or a redirect is not interpreted by the signed GET: the modelled call asks again and gets the object."""
    answers = iter([first])

    def once_then_object(conn, head, stop):
        status = next(answers, None)
        if status is not None:
            _answer(conn, status, b"<Error><Code>SlowDown</Code></Error>", b"Content-Type: application/xml\r\n")
        else:
            _answer(conn, b"200 OK", BODY, f"ETag: {etag_of(BODY)}\r\n".encode())

    with peer(once_then_object) as server:
        with contextlib.closing(S3Store(server.url, "k", "s", timeout=2.0, deadline=5.0)) as store:
            assert store.get("s3://b/registry/current/demo/home/manifest.json") == (BODY, etag_of(BODY))
        agents = [line for head in server.requests for line in head.lower().split(b"\r\n")
                  if line.startswith(b"user-agent:")]
    assert len(agents) == 2
    assert b"recsys-checks" in agents[0] and b"boto3" in agents[1]


def test_a_declared_length_over_the_limit_is_not_read():
    """An object whose Content-Length is over the limit is refused before its body is read (the peer never sends
    it), so a huge object costs no time and no memory."""
    def huge(conn, head, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 50000000\r\n\r\n" + b"{" * 10)
        stop.wait(5)

    with peer(huge) as server:
        with contextlib.closing(S3Store(server.url, "k", "s", timeout=2.0, deadline=5.0, max_bytes=4096)) as store:
            started = time.monotonic()
            with pytest.raises(InvalidObject, match="50000000 bytes, above the 4096-byte limit"):
                store.get("s3://b/registry/current/demo/home/manifest.json")
            assert time.monotonic() - started < 2.0


def test_a_body_cut_short_is_unreachable_not_a_traceback():
    """A peer that closes the connection in the middle of the body: the store is unreachable, with the URI."""
    def cut(conn, head, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 1000\r\n\r\n" + b"{" * 10)

    with peer(cut) as server:
        with contextlib.closing(S3Store(server.url, "k", "s", timeout=1.0, deadline=5.0)) as store:
            with pytest.raises(Unreachable, match="demo/home/manifest.json"):
                store.get("s3://b/registry/current/demo/home/manifest.json")


def test_without_credentials_anywhere_the_read_says_what_to_set(monkeypatch):
    """No keys given and none in the default chain: building the store asks nothing; the read is bad input that
    names the two variables, and no request reaches the endpoint."""
    from recsys_checks.core.errors import BadInput

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def object_answer(conn, head, stop):
        _answer(conn, b"200 OK", BODY, f"ETag: {etag_of(BODY)}\r\n".encode())

    with peer(object_answer) as server:
        with contextlib.closing(S3Store(server.url, None, None, timeout=1.0, deadline=5.0)) as store:
            assert server.requests == []
            with pytest.raises(BadInput, match="RECSYS_ARTIFACT_S3_ACCESS_KEY"):
                store.get("s3://b/registry/current/demo/home/manifest.json")
        assert server.requests == []


def test_stores_given_different_keys_each_sign_with_their_own():
    """Stores given their keys share the process's boto3 session (a session costs a tenth of a second to make); each
    still signs with its own keys, on its reads and on its modelled calls."""
    def answer(conn, head, stop):
        if head.startswith(b"HEAD"):
            _answer(conn, b"200 OK", b"", f"ETag: {etag_of(BODY)}\r\n".encode())
        else:
            _answer(conn, b"200 OK", BODY, f"ETag: {etag_of(BODY)}\r\n".encode())

    def signed_by(head: bytes) -> bytes:
        line = next(x for x in head.split(b"\r\n") if x.lower().startswith(b"authorization:"))
        return line.split(b"Credential=")[1].split(b"/")[0]

    with peer(answer) as server:
        stores = [S3Store(server.url, f"key-{n}", f"secret-{n}", timeout=2.0, deadline=5.0) for n in range(3)]
        try:
            for n, store in enumerate(stores):
                before = len(server.requests)
                store.get("s3://b/a.json")
                assert store.exists("s3://b/a.json")  # the modelled head_object
                assert {signed_by(h) for h in server.requests[before:]} == {f"key-{n}".encode()}
        finally:
            for store in stores:
                store.close()
