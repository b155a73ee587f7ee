"""Ranking: scores, ordering, candidate filters, constraints and block / pin / boost rules (no server)."""

from __future__ import annotations

from datetime import UTC, datetime

from stack_service.servicekit import CATALOG

from recsys_stack.service.documents import parse_rules
from recsys_stack.service.ranking import rank
from recsys_stack.service.recommend_request import parse_recommend_request

NOW = datetime(2026, 1, 2, tzinfo=UTC)
POP = [("sku-0001", 10), ("sku-0002", 8), ("sku-0003", 8), ("sku-0004", 5), ("sku-0005", 1)]
WEIGHTS = {"pop": 1.0, "cooc": 0.5, "emb": 0.0}


def run(rules=(), weights=WEIGHTS, catalog=CATALOG, cooc=None, **body):
    request = parse_recommend_request({"surface": "home", "user": {"user_id": "u"}, **body})
    return rank(
        request, weights=weights, popularity=POP, cooc=cooc, rules=parse_rules(list(rules)), catalog=catalog, now=NOW
    )


def ids(result):
    return [item["item_id"] for item in result.items]


def test_scores_order_by_score_then_item_id_with_ranks_from_one():
    """Equal scores are ordered by item_id; ranks are 1..n; k cuts the list."""
    result = run(k=3)
    assert result.items == [
        {"item_id": "sku-0001", "rank": 1, "score": 10},
        {"item_id": "sku-0002", "rank": 2, "score": 8},
        {"item_id": "sku-0003", "rank": 3, "score": 8},
    ]
    assert result.warnings == []


def test_pin_comes_first_and_respects_block_and_max_pins():
    """Pins go first in priority order, a blocked item is never pinned, max_pins limits a tag pin."""
    rules = [
        {"action": "pin", "item_ids": ["sku-0012", "sku-0004"], "priority": 1},
        {"action": "pin", "target_type": "tag", "target_key": "odd", "max_pins": 1, "priority": 9},
        {"action": "block", "item_ids": ["sku-0012"]},
    ]
    result = run(rules, k=4)
    assert ids(result) == ["sku-0001", "sku-0004", "sku-0002", "sku-0003"]
    assert [w["code"] for w in result.warnings] == ["RULE_PIN_INJECTED"]


def test_boost_and_rule_scope():
    """A boost adds boost_value to matching items; rules for another surface or segment do not apply."""
    rules = [
        {"action": "boost", "target_type": "brand", "target_key": "acme", "boost_value": 7.5},
        {"action": "block", "item_ids": ["sku-0001"], "surface": "search"},
        {"action": "block", "item_ids": ["sku-0002"], "segment": "vip"},
    ]
    result = run(rules, k=2)
    assert result.items == [
        {"item_id": "sku-0003", "rank": 1, "score": 15.5},
        {"item_id": "sku-0001", "rank": 2, "score": 10},
    ]
    assert ids(run(rules, k=1, segment="vip")) == ["sku-0003"]


def test_no_signal_and_partial_signal_warnings():
    """All-zero weights give SIGNAL_UNAVAILABLE and no items; anchors without a cooc artifact give SIGNAL_PARTIAL."""
    empty = run(weights={"pop": 0, "cooc": 0, "emb": 0})
    assert empty.items == [] and [w["code"] for w in empty.warnings] == ["SIGNAL_UNAVAILABLE"]
    partial = run(anchors=["sku-0001"], k=1)
    assert ids(partial) == ["sku-0001"] and "SIGNAL_PARTIAL" in [w["code"] for w in partial.warnings]


def test_missing_catalog_skips_tag_rules_with_a_warning():
    """Without item metadata, tag rules and constraints are skipped and TAG_LOOKUP_FAILED is reported."""
    result = run([{"action": "block", "target_type": "tag", "target_key": "odd"}], catalog=None, k=2)
    assert ids(result) == ["sku-0001", "sku-0002"]
    assert [w["code"] for w in result.warnings] == ["TAG_LOOKUP_FAILED"]


def test_empty_include_list_is_ignored_with_a_warning():
    """candidates.include_ids = [] is ignored (CANDIDATES_INCLUDE_EMPTY) rather than emptying the result."""
    result = run(candidates={"include_ids": []}, k=1)
    assert ids(result) == ["sku-0001"] and result.warnings[0]["code"] == "CANDIDATES_INCLUDE_EMPTY"
