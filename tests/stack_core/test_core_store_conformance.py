"""Object store conformance, run against both stores: the file store and moto's S3 server.

This module sorts first in the directory on purpose: the publish tests rely on conditional writes of the S3
emulator, so the emulator's behaviour is proven here before anything depends on it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from recsys_stack.objstore import (
    BUCKET,
    FileStore,
    NotFound,
    PreconditionFailed,
    S3Store,
    StoreUnavailable,
    etag_of,
)
from recsys_stack.processes import store_from_stack

pytestmark = pytest.mark.stack

KEY = "registry/current/demo/home/manifest.json"


def test_put_then_get_returns_the_bytes_and_their_etag(object_store):
    """A put returns the S3-style ETag (quoted MD5) and a get returns the same bytes and ETag."""
    etag = object_store.put(KEY, b'{"v": 1}')
    data, seen = object_store.get_with_etag(KEY)
    assert data == b'{"v": 1}'
    assert etag == seen == etag_of(b'{"v": 1}') == '"' + hashlib.md5(b'{"v": 1}').hexdigest() + '"'
    assert object_store.get(KEY) == b'{"v": 1}'
    assert object_store.exists(KEY)


def test_get_of_a_missing_key_raises_not_found(object_store):
    """Reading a key that was never written raises NotFound, and exists() says False."""
    with pytest.raises(NotFound):
        object_store.get("objectstore/demo/home/popularity/missing.json")
    assert not object_store.exists("objectstore/demo/home/popularity/missing.json")


def test_list_returns_the_keys_under_a_prefix_sorted(object_store):
    """list() is a plain string prefix match, sorted, without other prefixes or in-flight files."""
    keys = [
        "registry/records/demo/home/popularity/b.json",
        "registry/records/demo/home/popularity/a.json",
        "registry/records/demo/home/cooc/c.json",
        "registry/records/demo/search/popularity/d.json",
    ]
    for key in keys:
        object_store.put(key, b"{}")
    assert object_store.list("registry/records/demo/home/popularity/") == sorted(keys[:2])
    assert object_store.list("registry/records/demo/home/") == sorted(keys[:3])
    assert object_store.list("registry/records/demo/h") == sorted(keys[:3])
    assert object_store.list("registry/records/acme/") == []
    assert object_store.list("") == sorted(keys)


def test_if_none_match_refuses_an_existing_key(object_store):
    """A create-only put succeeds once and then raises PreconditionFailed, leaving the first bytes."""
    object_store.put(KEY, b"first", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        object_store.put(KEY, b"second", if_none_match=True)
    assert object_store.get(KEY) == b"first"


def test_if_match_refuses_a_stale_etag(object_store):
    """A put with an ETag that is no longer current raises PreconditionFailed and changes nothing."""
    old = object_store.put(KEY, b"one")
    object_store.put(KEY, b"two", if_match=old)
    with pytest.raises(PreconditionFailed):
        object_store.put(KEY, b"three", if_match=old)
    assert object_store.get(KEY) == b"two"


def test_if_match_on_a_missing_key_is_a_precondition_failure(object_store):
    """If-Match against an object that does not exist is a lost race, not a silent create."""
    with pytest.raises(PreconditionFailed):
        object_store.put(KEY, b"x", if_match=etag_of(b"anything"))
    assert not object_store.exists(KEY)


def test_if_match_accepts_the_etag_with_or_without_quotes(object_store):
    """Like S3, the ETag matches whether or not the caller kept its quotes."""
    etag = object_store.put(KEY, b"one")
    etag = object_store.put(KEY, b"two", if_match=etag.strip('"'))
    object_store.put(KEY, b"three", if_match=etag)
    assert object_store.get(KEY) == b"three"


def _race(open_store, writers: int, **condition) -> tuple[list[int], list[str]]:
    stores = [open_store() for _ in range(writers)]
    barrier = threading.Barrier(writers)
    wins: list[int] = []
    losses: list[str] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            stores[n].put(KEY, f"writer {n}".encode(), **condition)
            wins.append(n)
        except PreconditionFailed as exc:
            losses.append(str(exc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return wins, losses


@pytest.mark.parametrize("writers", [2, 8])
def test_exactly_one_of_concurrent_if_match_writes_wins(open_store, writers):
    """Writers racing with the same If-Match ETag: exactly one succeeds, the rest get PreconditionFailed."""
    etag = open_store().put(KEY, b"base")
    wins, losses = _race(open_store, writers, if_match=etag)
    assert len(wins) == 1 and len(losses) == writers - 1
    assert open_store().get(KEY) == f"writer {wins[0]}".encode()


@pytest.mark.parametrize("writers", [2, 8])
def test_exactly_one_of_concurrent_create_only_writes_wins(open_store, writers):
    """Writers racing to create the same key with If-None-Match: exactly one succeeds."""
    wins, losses = _race(open_store, writers, if_none_match=True)
    assert len(wins) == 1 and len(losses) == writers - 1
    assert open_store().get(KEY) == f"writer {wins[0]}".encode()


def test_uri_and_key_for_uri_round_trip(object_store):
    """uri() names the object the way manifests and records do; key_for_uri() gives the key back."""
    key = "objectstore/demo/home/popularity/" + "a" * 64 + ".json"
    uri = object_store.uri(key)
    assert uri.startswith("s3://recsys-artifacts/objectstore/" if object_store.kind == "s3" else "file:///")
    assert uri.endswith("/objectstore/demo/home/popularity/" + "a" * 64 + ".json")
    assert object_store.key_for_uri(uri) == key
    with pytest.raises(ValueError):
        object_store.key_for_uri("s3://other-bucket/x.json" if object_store.kind == "s3" else "file:///etc/passwd")


def test_unsafe_keys_are_refused_before_any_io(object_store):
    """Keys that could escape the layout (absolute, '..', empty segments, backslashes) are refused."""
    for bad in ["", "/abs", "a/../b", "a//b", "a/./b", "dir/", "a\\b", "ctl/\x01"]:
        with pytest.raises(ValueError):
            object_store.put(bad, b"x")
        with pytest.raises(ValueError):
            object_store.get(bad)


def test_file_store_leaves_no_temp_or_lock_files_in_the_key_space(tmp_path: Path):
    """Atomic writes go through a temp file that is renamed; no temp file stays and the kept lock file is not listed."""
    store = FileStore(tmp_path / "store")
    for n in range(3):
        store.put(KEY, f"v{n}".encode(), if_none_match=n == 0)
    assert store.list("") == [KEY]
    leftovers = [p.name for p in (tmp_path / "store" / "registry/current/demo/home").iterdir()]
    assert sorted(leftovers) == ["manifest.json", "manifest.json.lock"]


def test_file_store_with_its_root_gone_is_unavailable(tmp_path: Path):
    """A file store whose root directory vanished reports StoreUnavailable, not NotFound."""
    root = tmp_path / "store"
    store = FileStore(root)
    root.rmdir()
    with pytest.raises(StoreUnavailable):
        store.get(KEY)
    with pytest.raises(StoreUnavailable):
        store.put(KEY, b"x")


def test_unreachable_s3_fails_fast_with_store_unavailable(closed_port: int):
    """Nothing listening on the endpoint: StoreUnavailable within a couple of seconds, no retry loop."""
    started = time.monotonic()
    with S3Store(f"http://127.0.0.1:{closed_port}", BUCKET, "k", "s") as store:
        with pytest.raises(StoreUnavailable):
            store.get(KEY)
        with pytest.raises(StoreUnavailable):
            store.put(KEY, b"x", if_none_match=True)
    assert time.monotonic() - started < 5


def test_s3_missing_bucket_is_unavailable_not_missing(fresh_s3: str):
    """A bucket that does not exist is a broken deployment (StoreUnavailable), not a missing object."""
    with S3Store(fresh_s3, "no-such-bucket", "k", "s") as store, pytest.raises(StoreUnavailable):
        store.get(KEY)


def test_store_from_stack_opens_the_store_the_stack_describes(tmp_path: Path, fresh_s3: str):
    """stack.json picks the store: file under ROOT/store, S3 at s3_endpoint with credentials from env or secrets."""
    file_store = store_from_stack({"root": str(tmp_path), "store": "file"}, {})
    assert isinstance(file_store, FileStore) and file_store.root == tmp_path / "store"
    (tmp_path / "secrets.env").write_text("RECSYS_ARTIFACT_S3_ACCESS_KEY=a\nRECSYS_ARTIFACT_S3_SECRET_KEY=b\n")
    stack = {"root": str(tmp_path), "store": "s3", "s3_endpoint": fresh_s3, "bucket": BUCKET}
    with store_from_stack(stack, {}) as s3:
        assert isinstance(s3, S3Store)
        s3.put(KEY, b"x")
        assert s3.get(KEY) == b"x"
    with pytest.raises(ValueError):
        store_from_stack({"root": str(tmp_path), "store": "ftp"}, {})
