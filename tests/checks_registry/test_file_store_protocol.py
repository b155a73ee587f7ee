"""One file-store protocol for the checks and the stack: modes, temporary names, listing and a bounded lock."""

from __future__ import annotations

import fcntl
import os
import stat

import pytest

from recsys_checks.levers import rollback as M
from recsys_checks.reach.store import FileStore
from recsys_stack import objstore

MANIFEST = "registry/current/demo/home/manifest.json"


@pytest.fixture
def strict_umask():
    """umask 077 for the test, as in a hardened container."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def test_a_rollback_under_umask_077_leaves_the_suite_modes(file_registry, strict_umask):
    """Manifest and audit record 0644 and new directories 0755, so a service running as another user can read."""
    plan = M.plan_rollback(file_registry.target, "demo", "home", previous=True)
    result = M.apply_rollback(file_registry.target, plan, execute=True)
    assert stat.S_IMODE(os.stat(file_registry.root / MANIFEST).st_mode) == 0o644
    record = result.audit.removeprefix("file://")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.dirname(record)).st_mode) == 0o755


def test_the_stack_writes_the_same_modes_under_umask_077(tmp_path, strict_umask):
    """The stack's file store leaves 0644 objects in 0755 directories too."""
    store = objstore.FileStore(tmp_path / "s")
    store.put("registry/current/demo/home/manifest.json", b"{}")
    path = tmp_path / "s" / "registry/current/demo/home/manifest.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o755


def test_temporary_and_lock_files_of_either_writer_are_never_listed(file_registry):
    """In-flight temporary files (any dot-name) and lock files are not objects, whoever wrote them."""
    records = file_registry.root / "registry/records/demo/home/popularity"
    before = FileStore().list(file_registry.uri("registry/records/demo/home/"))
    for name in (".x.json.tmp-abc123", ".x.json.0123abcd.tmp", "x.json.lock"):
        (records / name).write_bytes(b"{}")
    assert FileStore().list(file_registry.uri("registry/records/demo/home/")) == before


def test_the_stack_gives_up_on_a_lock_held_too_long(tmp_path, monkeypatch):
    """The stack's writer waits a bounded time for another writer's lock, as the checks' writer does."""
    monkeypatch.setattr(objstore, "LOCK_WAIT", 0.2)
    store = objstore.FileStore(tmp_path / "s")
    store.put("k.json", b"1")
    with open(tmp_path / "s" / "k.json.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(objstore.StoreUnavailable, match="lock"):
            store.put("k.json", b"2")
    assert (tmp_path / "s" / "k.json").read_bytes() == b"1"


def test_a_read_without_etag_is_bounded_and_checked_as_a_get(tmp_path):
    """``read`` gives the bytes ``get`` gives, and refuses what ``get`` refuses (too big, a FIFO, a folder)."""
    import os

    from recsys_checks.core.errors import InvalidObject, NotFound

    small, big, fifo = tmp_path / "small.json", tmp_path / "big.json", tmp_path / "fifo.json"
    small.write_bytes(b'{"a": 1}')
    big.write_bytes(b"x" * 100)
    os.mkfifo(fifo)
    store = FileStore(max_bytes=50)
    assert store.read(small.as_uri()) == store.get(small.as_uri())[0] == b'{"a": 1}'
    for path in (big, fifo, tmp_path):
        with pytest.raises(InvalidObject):
            store.read(path.as_uri())
    with pytest.raises(NotFound):
        store.read((tmp_path / "gone.json").as_uri())
