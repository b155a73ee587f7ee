"""Deterministic exposure events and the catalog they draw from."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from recsys_stack import catalog
from recsys_stack.events import ensure_events, events_path, generate_events, read_events
from recsys_stack.formats import UnsafeSegment

DAY = date(2026, 1, 1)


def _ranking(events: list[dict], top: int = 10) -> list[str]:
    counts = Counter(e["item_id"] for e in events)
    return [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def test_catalog_has_120_items_with_tags_brand_and_category():
    """sku-0001..sku-0120, each with a tag list, a brand and one of the categories."""
    assert [i["item_id"] for i in catalog.ITEMS] == [f"sku-{n:04d}" for n in range(1, 121)]
    assert all(i["tags"] and i["brand"] and i["category"] in catalog.CATEGORIES for i in catalog.ITEMS)
    assert set(catalog.CATEGORIES) == {i["category"] for i in catalog.ITEMS}
    assert catalog.BY_ID["sku-0042"]["item_id"] == "sku-0042"


def test_events_are_deterministic_for_a_tenant_surface_and_day(tmp_path):
    """The same (tenant, surface, day) always gives the same file bytes, written once."""
    first = ensure_events(tmp_path, "demo", "home", DAY)
    data, mtime = first.read_bytes(), first.stat().st_mtime_ns
    assert first == events_path(tmp_path, "demo", "home", DAY) == tmp_path / "events/demo/home/2026-01-01.jsonl"
    assert ensure_events(tmp_path, "demo", "home", DAY).stat().st_mtime_ns == mtime
    assert generate_events("demo", "home", DAY) == read_events(first)
    assert ensure_events(tmp_path / "other", "demo", "home", DAY).read_bytes() == data


def test_events_are_exposures_of_catalog_items_inside_the_day():
    """Every event is a ranked exposure of a catalog item, stamped inside [00:00Z, +24h) of its day."""
    events = generate_events("demo", "home", DAY)
    assert len(events) == 2400
    assert all(e["ts"].startswith("2026-01-01T") and e["ts"].endswith("Z") for e in events)
    assert all(e["item_id"] in catalog.BY_ID and 1 <= e["rank"] <= 10 for e in events)
    assert {e["tenant"] for e in events} == {"demo"} and {e["surface"] for e in events} == {"home"}
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_rankings_differ_between_days_and_surfaces():
    """Popularity moves from day to day and differs per surface, so each day publishes a new version."""
    rankings = [_ranking(generate_events("demo", "home", date(2026, 1, d))) for d in range(1, 6)]
    assert all(a != b for a, b in zip(rankings, rankings[1:], strict=False))
    assert _ranking(generate_events("demo", "search", DAY)) != rankings[0]


def test_volume_changes_the_number_of_responses(tmp_path):
    """An explicit volume rewrites the day's file with that many responses of ten items each."""
    path = ensure_events(tmp_path, "demo", "home", DAY, volume=5)
    assert len(read_events(path)) == 50


def test_unsafe_tenant_is_refused_before_any_path_is_built(tmp_path):
    """'../x' as a tenant never reaches the filesystem."""
    with pytest.raises(UnsafeSegment):
        ensure_events(tmp_path, "../x", "home", DAY)
    assert not (tmp_path / "events").exists()
