"""Like the suite's pipelines, the stack's publisher checks no hold (on both stores): a held surface is published
and swapped as usual. What stops shipping is a scheduler that asks the gate first (tests/stack_cli)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from recsys_stack.objstore import hold_key, manifest_key
from recsys_stack.publisher import publish

pytestmark = pytest.mark.stack

T, S = "demo", "home"
NOW = datetime(2026, 1, 3, 1, 30, tzinfo=UTC)


def _marker(held: bool) -> bytes:
    return json.dumps({"v": 1, "tenant": T, "surface": S, "held": held, "reason": "joins at 40 %", "by": "alice",
                       "at": "2026-01-03T00:00:00Z"}).encode()


@pytest.fixture
def published(object_store, tmp_path: Path):
    """demo/home with day 1 published: (store, root)."""
    publish(object_store, tmp_path, tenant=T, surface=S, day=date(2026, 1, 1), now=datetime(2026, 1, 2, 1, tzinfo=UTC))
    return object_store, tmp_path


@pytest.mark.parametrize("marker", [_marker(True), b"{not json", _marker(False)])
def test_the_publisher_ignores_any_hold_marker_as_the_suite_does(published, marker):
    store, root = published
    store.put(hold_key(T, S), marker)
    before = store.get(manifest_key(T, S))
    run = publish(store, root, tenant=T, surface=S, day=date(2026, 1, 2), now=NOW)
    assert run["status"] == "ok" and store.get(manifest_key(T, S)) != before
    assert "hold" not in {s["step"] for s in run["steps"]}
    assert store.get(hold_key(T, S)) == marker  # the marker is the gate's to read, and stays as it was
