"""Object store by URI: compare-and-swap semantics on both stores, and errors that name the fix."""

from __future__ import annotations

import fcntl
import time

import pytest

from recsys_checks.core.errors import BadInput, Conflict, NotFound, Unreachable
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import FileStore, TargetStores, etag_of, open_store


@pytest.fixture
def store(registry):
    """An open store over the registry fixture (file or S3), closed after the test."""
    with TargetStores(registry.target) as st:
        yield st


def test_get_returns_content_and_md5_etag(registry, store):
    """get gives the bytes and the quoted MD5 ETag, the same on both stores."""
    uri = registry.uri("registry/current/demo/home/manifest.json")
    data, etag = store.get(uri)
    assert data == registry.read("registry/current/demo/home/manifest.json")
    assert etag == etag_of(data)


def test_get_of_a_missing_object_is_not_found(registry, store):
    """A missing key raises NotFound naming the URI."""
    uri = registry.uri("registry/current/demo/nope/manifest.json")
    with pytest.raises(NotFound, match="nope"):
        store.get(uri)
    assert not store.exists(uri)


def test_put_if_match_replaces_only_what_was_read(registry, store):
    """If-Match with the current ETag writes; with a stale ETag it raises Conflict and writes nothing."""
    uri = registry.uri("scratch/doc.json")
    e1 = store.put(uri, b"one")
    e2 = store.put(uri, b"two", if_match=e1)
    assert store.get(uri) == (b"two", e2)
    with pytest.raises(Conflict):
        store.put(uri, b"three", if_match=e1)
    assert store.get(uri)[0] == b"two"


def test_put_if_match_on_a_missing_object_conflicts(registry, store):
    """If-Match against an object that does not exist is a conflict."""
    with pytest.raises(Conflict):
        store.put(registry.uri("scratch/absent.json"), b"x", if_match=etag_of(b"x"))


def test_put_if_none_match_never_overwrites(registry, store):
    """Create-only writes succeed once, then raise Conflict."""
    uri = registry.uri("scratch/once.json")
    store.put(uri, b"first", if_none_match=True)
    with pytest.raises(Conflict):
        store.put(uri, b"second", if_none_match=True)
    assert store.get(uri)[0] == b"first"


def test_list_is_recursive_under_a_prefix(registry, store, versions):
    """list returns every object URI under a prefix, sorted; a name prefix also works."""
    recs = store.list(registry.uri("registry/records/demo/home/"))
    assert len(recs) == 7 and recs == sorted(recs)
    pops = store.list(registry.uri("registry/records/demo/home/pop"))
    assert len(pops) == 5
    assert store.list(registry.uri("registry/records/acme/")) == []
    assert store.children(registry.uri("registry/records/demo/home/")) == ["cooc", "popularity"]


def test_file_put_is_atomic_and_leaves_no_temp_file(file_registry):
    """After conditional writes no temporary file remains; the kept lock file is never listed."""
    st = FileStore()
    uri = file_registry.uri("scratch/x.json")
    st.put(uri, b"a", if_none_match=True)
    st.put(uri, b"b", if_match=etag_of(b"a"))
    names = sorted(p.name for p in (file_registry.root / "scratch").iterdir())
    assert names == ["x.json", "x.json.lock"]
    assert st.list(file_registry.uri("scratch/")) == [uri]


def test_file_put_waits_for_a_held_lock_then_conflicts(file_registry):
    """A writer holding the object's lock makes another give up with Conflict, changing nothing."""
    uri = file_registry.uri("scratch/locked.json")
    st = FileStore(lock_timeout=0.2)
    st.put(uri, b"a")
    with open(file_registry.root / "scratch" / "locked.json.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="another process"):
            st.put(uri, b"b", if_match=etag_of(b"a"))
    assert st.get(uri)[0] == b"a"


def test_a_lock_file_left_by_a_dead_writer_does_not_block(file_registry):
    """The lock is an flock, released by the kernel when its holder dies: a stale lock file is harmless."""
    uri = file_registry.uri("scratch/stale.json")
    st = FileStore(lock_timeout=0.2)
    st.put(uri, b"a")
    (file_registry.root / "scratch" / "stale.json.lock").write_text("4242\n")
    st.put(uri, b"b", if_match=etag_of(b"a"))
    assert st.get(uri)[0] == b"b"


def test_the_stacks_publisher_and_our_rollback_take_the_same_lock(file_registry):
    """While the local stack's file store writes an object, a rollback of the same object waits for it."""
    from recsys_stack.objstore import FileStore as StackFileStore

    stack_store = StackFileStore(file_registry.root)
    stack_store.put("scratch/shared.json", b"a")
    uri = file_registry.uri("scratch/shared.json")
    st = FileStore(lock_timeout=0.2)
    with stack_store._lock("scratch/shared.json"):
        with pytest.raises(Conflict):
            st.put(uri, b"b", if_match=etag_of(b"a"))
    st.put(uri, b"b", if_match=etag_of(b"a"))
    assert stack_store.get("scratch/shared.json") == b"b"


def test_unsupported_or_relative_uris_are_bad_input():
    """Only file:///abs and s3://bucket/key are accepted."""
    with pytest.raises(BadInput):
        open_store("https://example/x.json", Target())
    with pytest.raises(BadInput):
        FileStore().get("file://relative/path.json")


@pytest.mark.stack
def test_unreachable_s3_endpoint_fails_fast(closed_port):
    """A closed local port raises Unreachable within seconds, naming the URI and the setting to check."""
    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=f"http://127.0.0.1:{closed_port}", s3_access_key="k", s3_secret_key="s", timeout=1.0)
    from recsys_checks.judge.registry import manifest as M

    started = time.monotonic()
    with pytest.raises(Unreachable) as exc:
        M.check_manifest(target, "demo", "home")
    assert time.monotonic() - started < 5
    msg = str(exc.value)
    assert "s3://recsys-artifacts/registry/current/demo/home/manifest.json" in msg
    assert "RECSYS_ARTIFACT_S3_ENDPOINT" in msg and "\n" not in msg


@pytest.mark.parametrize("endpoint,region", [("127.0.0.1:9000", "us-east-1"), ("http://127.0.0.1:9", "us east")])
def test_an_unusable_s3_endpoint_or_region_is_bad_input_not_a_traceback(endpoint, region):
    """botocore's ValueError for an endpoint without scheme or a malformed region becomes one line, exit 2."""
    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=endpoint, s3_region=region, s3_access_key="k", s3_secret_key="s")
    with pytest.raises(BadInput, match="RECSYS_ARTIFACT_S3_ENDPOINT"):
        with TargetStores(target) as st:
            st.get("s3://recsys-artifacts/registry/current/demo/home/manifest.json")


@pytest.mark.parametrize("access,secret", [("AKIAEXAMPLE\n", "s3cr3t-value"), ("AKIAEXAMPLE", "s3cr3t value")])
def test_s3_credentials_with_whitespace_are_refused_without_showing_them(access, secret):
    """A stray newline in a key would make the HTTP client quote the signed header in its error: refused first."""
    with pytest.raises(BadInput, match="RECSYS_ARTIFACT_S3_") as info:
        open_store("s3://recsys-artifacts/x.json", Target(s3_endpoint="http://127.0.0.1:9", s3_access_key=access,
                                                          s3_secret_key=secret))
    assert "AKIAEXAMPLE" not in str(info.value) and "s3cr3t" not in str(info.value)


def test_botocore_errors_quoting_header_values_are_not_repeated():
    """An HTTPClientError quoting the Authorization header is reported by class, without the header value."""
    from botocore.exceptions import HTTPClientError

    with open_store("s3://b/k", Target(s3_endpoint="http://127.0.0.1:9", s3_access_key="AKIAEXAMPLE",
                                       s3_secret_key="s3cr3t")) as st:
        exc = HTTPClientError(error=ValueError("Invalid header value b'AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/x'"))
        err = st._translate(exc, "s3://b/k", "reading")
    assert isinstance(err, Unreachable) and "HTTPClientError" in str(err)
    assert "AKIAEXAMPLE" not in str(err)


def test_an_unreadable_directory_is_unreachable_not_an_empty_listing(file_registry, monkeypatch):
    """A records directory the store cannot read (permissions, a stale mount) is an error, not "no versions"."""
    import os

    real = os.scandir
    records = str(file_registry.root / "registry" / "records" / "demo" / "home" / "popularity")

    def scandir(path="."):
        if os.fspath(path) == records:
            raise PermissionError(13, "Permission denied", records)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(Unreachable, match="cannot list"):
        FileStore().list(file_registry.uri("registry/records/demo/home/"))


@pytest.mark.stack
def test_exists_tells_a_missing_key_from_a_missing_bucket_by_code_whatever_the_bucket_is_called(s3_endpoint):
    """A bucket named with the word 'bucket' still reports a missing key as absent; reading from a missing bucket
    says the bucket is missing (its error code, not a word in a message)."""
    from recsys_checks.core.errors import NotFound
    from recsys_checks.reach.store import S3Store

    from .conftest import _client

    client = _client(s3_endpoint)
    client.create_bucket(Bucket="my-bucket-of-things")
    client.close()
    store = S3Store(s3_endpoint, "testing", "testing")
    try:
        assert store.exists("s3://my-bucket-of-things/registry/missing.json") is False
        with pytest.raises(NotFound, match="bucket of"):
            store.get("s3://no-such-bucket-here/registry/missing.json")
    finally:
        store.close()
