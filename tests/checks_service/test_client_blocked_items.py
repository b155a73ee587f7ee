"""The clients check and the tenant's block rules: an item an in-force block rule hides that clients are served is a
finding, and a rules document that is not the raw list the service applies (a PUT wrapped as ``{"rules": [...]}``) is
one whatever the answers hold, naming the recalls it meant that are served.

Generated: rules of every scope (surface, segment, enabled, validity window) as a raw list or wrapped, and answers of
any items, judged against a small oracle written here apart from ``recsys_checks``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_checks.judge.serving.clients import Published, check_client_answers
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target

ITEMS = [f"sku-{n:04d}" for n in range(1, 13)]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TARGET = Target(base_url="http://service", api_key="k" * 32)


def _client(rules: Any, answers: dict[str, list[str]]) -> ServiceClient:
    """A service whose rules document is ``rules`` and whose answer to each shape (plain / anchors, by segment) is
    the given list of items."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/rules"):
            return httpx.Response(200, json={"tenant_id": "demo", "rules_version": "ab" * 32, "rules": rules},
                                  headers={"ETag": "ab" * 32})
        if request.url.path.startswith("/v1/admin/"):
            return httpx.Response(404, json={"code": "RECSYS_CONFIG_NOT_FOUND", "status": 404})
        body = json.loads(request.content)
        shape = ("anchors" if "anchors" in body else "plain") + (f"@{body['segment']}" if body.get("segment") else "")
        items = answers.get(shape, [])
        return httpx.Response(200, json={"items": [{"item_id": i, "rank": n, "score": 1}
                                                   for n, i in enumerate(items, 1)]})

    return ServiceClient(TARGET, transport=httpx.MockTransport(handle))


def _published(segments: list[str]) -> Published:
    return Published(kinds={"popularity": set(ITEMS)}, popularity=list(ITEMS), anchor=ITEMS[0], segments=segments)


def _check(rules: Any, answers: dict[str, list[str]], segments: list[str] | None = None) -> dict[str, Any]:
    result = check_client_answers(TARGET, "demo", "home", k=3, published=_published(segments or []),
                                  client=_client(rules, answers), now=NOW)
    assert not result.unread, result.summary
    return {f["cause"]: f for f in result.data["findings"]} | {"_all": list(result.data["findings"])}


RECALL = {"action": "block", "target_type": "item", "item_ids": ["sku-0001"], "priority": 100}


def test_a_recall_wrapped_as_an_object_is_a_rules_finding_naming_the_item_served() -> None:
    found = _check({"rules": [RECALL]}, {"plain": ["sku-0001", "sku-0002", "sku-0003"],
                                         "anchors": ["sku-0002", "sku-0003", "sku-0004"]})
    finding = found["rules_not_list"]
    assert finding["evidence"]["blocked_served"] == {"plain": {"sku-0001": 1}}
    assert "sku-0001" in finding["summary"] and "blocked_items_served" not in found


def test_a_wrapped_document_is_a_finding_even_when_no_answer_shows_it() -> None:
    found = _check({"rules": []}, {"plain": ITEMS[:3], "anchors": ITEMS[3:6]})
    assert found["rules_not_list"]["evidence"]["blocked_served"] == {}


def test_a_block_the_service_does_not_apply_is_a_finding_of_the_shape_that_serves_it() -> None:
    found = _check([RECALL], {"plain": ITEMS[1:4], "anchors": ["sku-0005", "sku-0001", "sku-0006"]})
    finding = found["blocked_items_served"]
    assert (finding["shape"], finding["evidence"]["ranks"]) == ("anchors", {"sku-0001": 2})
    assert "rules_not_list" not in found


def test_blocks_that_are_applied_are_quiet() -> None:
    found = _check([RECALL], {"plain": ITEMS[1:4], "anchors": ITEMS[4:7]})
    assert found == {"_all": []}


# --------------------------------------------------------------------------------------------------- generated


def _in_force(rule: dict[str, Any], segment: str) -> bool:
    """The oracle's reading of RECSYS-INTERFACES §2.2: enabled, of this surface and segment (or none), in window."""
    if rule.get("enabled", True) is not True or rule.get("surface", "home") != "home":
        return False
    if rule.get("segment", segment) != segment:
        return False
    start = datetime.fromisoformat(rule["valid_from"]) if "valid_from" in rule else None
    end = datetime.fromisoformat(rule["valid_until"]) if "valid_until" in rule else None
    return (start is None or start <= NOW) and (end is None or NOW < end)


_TIMES = st.sampled_from([NOW - timedelta(days=1), NOW + timedelta(days=1)]).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ").replace("Z", "+00:00"))
_RULE = st.fixed_dictionaries(
    {"action": st.sampled_from(["block", "pin", "boost"]), "item_ids": st.lists(st.sampled_from(ITEMS), min_size=1,
                                                                                max_size=3)},
    optional={"surface": st.sampled_from(["home", "search"]), "segment": st.sampled_from(["default", "vip"]),
              "enabled": st.booleans(), "valid_from": _TIMES, "valid_until": _TIMES, "priority": st.integers(0, 9)})
_ANSWER = st.lists(st.sampled_from(ITEMS), min_size=3, max_size=3, unique=True)


@settings(max_examples=40, deadline=None)
@given(rules=st.lists(_RULE, max_size=4), wrapped=st.booleans(), segments=st.sampled_from([[], ["vip"]]),
       answers=st.fixed_dictionaries({"plain": _ANSWER, "anchors": _ANSWER, "plain@vip": _ANSWER,
                                      "anchors@vip": _ANSWER}))
def test_served_blocks_and_the_rules_shape_match_the_oracle(rules, wrapped, segments, answers) -> None:
    """Every shape serving an item an in-force item block hides is named (by that shape, or in the wrapped
    document's finding), and no other shape is."""
    found = _check({"rules": rules} if wrapped else rules, answers, segments)
    asked = [s for s in answers if "@" not in s or s.partition("@")[2] in segments]
    expected = {}
    for shape in asked:
        segment = shape.partition("@")[2] or "default"
        hidden = {i for r in rules if r["action"] == "block" and _in_force(r, segment) for i in r["item_ids"]}
        if served := {i for i in answers[shape] if i in hidden}:
            expected[shape] = served
    if wrapped:
        named = found["rules_not_list"]["evidence"]["blocked_served"]
        assert {s: set(ranks) for s, ranks in named.items()} == expected
        assert "blocked_items_served" not in found
    else:
        assert "rules_not_list" not in found
        named = {f["shape"]: set(f["evidence"]["items"]) for f in found["_all"]
                 if f["cause"] == "blocked_items_served"}
        assert named == expected
