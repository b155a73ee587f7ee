"""The invariants of recsys_checks.judge.invariants, each firing and quiet (pure functions, no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from recsys_checks.judge.invariants import (
    MAX_HIDDEN_SHARE,
    WINDOW_AHEAD,
    age_finding,
    future_finding,
    hidden_share,
    item_drop_finding,
    weight_findings,
)

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
ITEMS = [{"item_id": f"sku-{n}", "count": 100 - n} for n in range(20)]


@pytest.mark.parametrize("weights", [{"pop": 1.0, "cooc": 0.5, "emb": 0}, {"pop": Decimal("0.8")}, {"pop": 1_000_000}])
def test_sane_weights_are_quiet(weights):
    assert weight_findings({"weights": weights}) == []


@pytest.mark.parametrize(("weights", "word"), [
    ({"pop": 1e308}, "above the sane limit"), ({"pop": -1}, "below 0"), ({"pop": "1"}, "not a number"),
    ({"pop": True}, "not a number"), ({"pop": 0, "cooc": 0, "emb": 0}, "no signal"),
    ({"pop": float("inf")}, "not finite"),
])
def test_weights_out_of_range_fire(weights, word):
    findings = weight_findings({"weights": weights})
    assert findings and word in findings[0]


def test_no_weights_or_a_config_that_is_not_an_object():
    assert weight_findings({"flags": {}}) == []
    assert "not a JSON object" in weight_findings([1, 2])[0]


def test_rules_hiding_most_of_the_catalog_fire_and_a_few_are_quiet():
    most = [{"action": "block", "target_type": "item", "item_ids": [i["item_id"] for i in ITEMS[:19]]}]
    few = [{"action": "block", "target_type": "item", "item_ids": ["sku-1", "sku-2"]}]
    hidden = hidden_share(most, ITEMS, "home", NOW)
    assert (hidden.hidden, hidden.total, hidden.too_much) == (19, 20, True) and "95%" in hidden.finding()
    assert hidden_share(few, ITEMS, "home", NOW).too_much is False
    assert hidden_share(few, ITEMS, "home", NOW).finding() is None
    assert 0 < MAX_HIDDEN_SHARE < 1


def test_rules_of_another_surface_disabled_or_expired_hide_nothing():
    ids = [i["item_id"] for i in ITEMS]
    rules = [{"action": "block", "item_ids": ids, "surface": "search"},
             {"action": "block", "item_ids": ids, "enabled": False},
             {"action": "block", "item_ids": ids, "valid_until": "2026-12-01T00:00:00Z"},
             {"action": "boost", "item_ids": ids}]
    assert hidden_share(rules, ITEMS, "home", NOW).hidden == 0


def test_tag_blocks_are_named_as_uncounted():
    rules = [{"action": "block", "target_type": "tag", "target_key": "adult"}]
    hidden = hidden_share(rules, ITEMS, "home", NOW)
    assert hidden.hidden == 0 and hidden.uncounted == ["tag:adult"]


def test_times_old_future_and_fine():
    assert age_finding("w", NOW - timedelta(hours=30), NOW, timedelta(hours=26))
    assert age_finding("w", NOW - timedelta(hours=20), NOW, timedelta(hours=26)) is None
    assert "in the future" in future_finding("u", NOW + timedelta(hours=1), NOW)
    assert future_finding("u", NOW + timedelta(minutes=1), NOW) is None
    # a window of the day in progress ends tonight: not skew; one that has not begun is
    assert future_finding("w", NOW + timedelta(hours=4), NOW, WINDOW_AHEAD) is None
    assert future_finding("w", NOW + timedelta(hours=28), NOW, WINDOW_AHEAD)


@pytest.mark.parametrize(("items", "previous"), [(120, 120), (60, 120), (130, 120), (3, 10), (0, 19), (5, None)])
def test_an_artifact_that_kept_half_its_items_is_quiet(items, previous):
    assert item_drop_finding("popularity", items, previous) is None


@pytest.mark.parametrize(("items", "previous", "share"), [(5, 120, "96%"), (59, 120, "51%"), (0, 20, "100%")])
def test_an_artifact_that_lost_more_than_half_its_items_fires(items, previous, share):
    finding = item_drop_finding("popularity", items, previous, "ab" * 32)
    assert finding and f"{items} items" in finding and str(previous) in finding and share in finding
    assert "abababababab" in finding
