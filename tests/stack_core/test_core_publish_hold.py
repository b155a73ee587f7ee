"""The publisher respects a hold (on both stores): a held surface's manifest is not swapped; a cleared one is."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from recsys_stack.objstore import hold_key, manifest_key
from recsys_stack.publisher import PublishError, publish, run_logs

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


def test_a_held_surface_is_not_published_and_the_run_says_why(published):
    """While held, a publish fails with kind held, exit 1, names the reason and the clear command; nothing moves."""
    store, root = published
    store.put(hold_key(T, S), _marker(True))
    before = store.get(manifest_key(T, S))
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=date(2026, 1, 2), now=NOW)
    err = caught.value
    assert err.kind == "held" and err.exit_code == 1 and err.step == "hold"
    assert "joins at 40 %" in str(err) and "recsys-checks hold clear --tenant demo --surface home" in str(err)
    assert store.get(manifest_key(T, S)) == before
    assert store.list(f"objectstore/{T}/{S}/popularity/") and len(store.list(f"objectstore/{T}/{S}/popularity/")) == 1
    assert run_logs(root, T, S)[0]["status"] == "failed"


def test_an_unreadable_hold_marker_counts_as_held(published):
    """A marker that is not JSON stops the publish (fail closed)."""
    store, root = published
    store.put(hold_key(T, S), b"{not json")
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=date(2026, 1, 2), now=NOW)
    assert caught.value.kind == "held" and "unreadable" in str(caught.value)


def test_a_cleared_hold_lets_the_publish_swap(published):
    """A marker with held false is kept and does not stop the publish."""
    store, root = published
    store.put(hold_key(T, S), _marker(False))
    run = publish(store, root, tenant=T, surface=S, day=date(2026, 1, 2), now=NOW)
    assert run["status"] == "ok"
    assert json.loads(store.get(manifest_key(T, S)))["updated_at"] == "2026-01-03T01:30:00Z"
    assert json.loads(store.get(hold_key(T, S)))["held"] is False
