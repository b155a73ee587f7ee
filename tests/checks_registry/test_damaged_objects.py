"""Damaged manifests and blobs are findings, read within bounds, and never block the repair."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.registry import manifest
from recsys_checks.levers import rollback

MANIFEST = "registry/current/demo/home/manifest.json"


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path):
    path.unlink()
    path.symlink_to("/dev/zero")


def _deep(path):
    path.write_bytes(b"[" * 100_000 + b"]" * 100_000)


def _large(path):
    path.write_bytes(b" " * 5000 + path.read_bytes())


@pytest.mark.parametrize("damage", [_fifo, _dev_zero, _deep, _large], ids=["fifo", "dev-zero", "deep", "large"])
def test_a_damaged_manifest_is_invalid_and_a_rollback_can_still_be_planned_and_applied(file_registry, damage):
    """FIFO, /dev/zero, absurd nesting or too many bytes: status says invalid quickly; --previous repairs it."""
    target = replace(file_registry.target, max_bytes=4096)
    damage(file_registry.root / MANIFEST)
    started = time.monotonic()
    res = manifest.check_manifest(target, "demo", "home")
    assert time.monotonic() - started < 2.0
    assert res.status == "fail" and res.data["condition"] == "invalid", res.summary
    plan = rollback.plan_rollback(target, "demo", "home", previous=True)
    result = rollback.apply_rollback(target, plan, execute=True)
    assert result.status == "applied", result.summary
    assert (file_registry.root / MANIFEST).is_file() and not (file_registry.root / MANIFEST).is_symlink()
    assert manifest.check_manifest(target, "demo", "home").data["condition"] in ("healthy", "stale")


def test_a_manifest_replaced_by_a_directory_is_named_and_is_bad_input_not_a_conflict(file_registry):
    """A directory where the manifest should be: 'is a directory' in status, and the rollback says to move it."""
    path = file_registry.root / MANIFEST
    path.unlink()
    path.mkdir()
    res = manifest.check_manifest(file_registry.target, "demo", "home")
    assert res.data["condition"] == "invalid" and "directory" in res.summary
    plan = rollback.plan_rollback(file_registry.target, "demo", "home", previous=True)
    with pytest.raises(BadInput, match="directory"):
        rollback.apply_rollback(file_registry.target, plan, execute=True)
    assert path.is_dir()


@pytest.mark.parametrize("kind", ["large", "deep"])
def test_a_large_or_deep_manifest_is_invalid_and_repairable_on_both_stores(registry, kind):
    """On S3 too: a manifest above the limit is not read (invalid), a deeply nested one is invalid, and a rollback
    --previous replaces it."""
    target = replace(registry.target, max_bytes=4096)
    body = b" " * 5000 + registry.read(MANIFEST) if kind == "large" else b"[" * 100_000 + b"]" * 100_000
    registry.write(MANIFEST, body)
    res = manifest.check_manifest(target, "demo", "home")
    assert res.data["condition"] == "invalid", res.summary
    plan = rollback.plan_rollback(target, "demo", "home", previous=True)
    assert rollback.apply_rollback(target, plan, execute=True).status == "applied"
    assert manifest.check_manifest(target, "demo", "home").data["condition"] in ("healthy", "stale")


def test_a_blob_that_is_a_fifo_is_an_invalid_artifact_found_at_once(file_registry):
    """The popularity blob replaced by a FIFO: status names it unreadable in well under a second, no hang."""
    parsed = manifest.parse_manifest(file_registry.read(MANIFEST))
    blob = parsed.current["popularity"].removeprefix("file://")
    os.unlink(blob)
    os.mkfifo(blob)
    started = time.monotonic()
    res = manifest.check_manifest(file_registry.target, "demo", "home")
    assert time.monotonic() - started < 2.0
    assert res.data["condition"] == "invalid"
    assert any("not a regular file" in problem for problem in res.data["problems"])
