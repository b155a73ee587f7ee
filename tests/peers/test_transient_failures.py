"""Transient failures of the service (502, 503, 504, a reset connection), against real servers on 127.0.0.1: reads
and conditional writes are tried again with backoff and jitter within the call's deadline and say how many tries it
took; a write without If-Match is sent once; a service that keeps failing ends by the deadline with a clear message."""

from __future__ import annotations

import json
import random
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_checks.core.errors import ServiceProblem, Unreachable
from recsys_checks.reach.service import RetryPolicy, ServiceClient, may_retry
from recsys_checks.reach.settings import Target

from .peerkit import RESET, peer, reply, scripted

KEY = "sk-transient-0123456789"
VERSION = "a" * 64
RULES = [{"action": "block", "target_type": "item", "item_ids": ["sku-1"]}]
RECS = {"items": [{"item_id": "sku-1", "rank": 1, "score": 3}], "meta": {"tenant_id": "demo", "surface": "home"}}


def client_for(url: str, deadline: float = 5.0) -> ServiceClient:
    """A client of the peer at ``url`` with short pauses between tries (the policy's shape, a test's scale)."""
    client = ServiceClient(Target(base_url=url, api_key=KEY, timeout=1.0, deadline=deadline))
    client.retry = RetryPolicy(base=0.02, cap=0.2, rng=random.Random(7))
    return client


def rules_answer(status: int = 200) -> bytes:
    return reply(status, {"tenant_id": "demo", "rules_version": VERSION, "rules": RULES}, {"ETag": VERSION})


def test_a_read_answered_503_then_200_is_tried_again_and_says_two_tries():
    """GET rules: 503, then 200: the document is returned, the call took two tries."""
    with peer(scripted(reply(503), rules_answer())) as server, client_for(server.url) as client:
        doc, version = client.get_doc("demo", "rules")
        assert (doc, version, client.last_attempts) == (RULES, VERSION, 2)
        assert len(server.requests) == 2


@pytest.mark.parametrize("status", [502, 504])
def test_every_transient_status_is_tried_again(status):
    """502 and 504 (a proxy in front of a restarting service) are transient like 503."""
    with peer(scripted(reply(status), rules_answer())) as server, client_for(server.url) as client:
        assert client.get_doc("demo", "rules")[0] == RULES and client.last_attempts == 2


def test_a_reset_connection_is_tried_again():
    """POST /v1/recommend (a read): the first connection is reset, the second answers."""
    with peer(scripted(RESET, reply(200, RECS))) as server, client_for(server.url) as client:
        body = client.recommend_body("home", user_id="u1", k=1)
        assert client.recommend("demo", body)["items"] == RECS["items"] and client.last_attempts == 2


def test_a_service_that_always_answers_503_ends_by_the_deadline_with_a_clear_message():
    """Always 503: tried until the deadline, then one error naming the status, the call and the tries."""
    with peer(scripted(reply(503))) as server, client_for(server.url, deadline=0.8) as client:
        started = time.monotonic()
        with pytest.raises(ServiceProblem) as caught:
            client.get_doc("demo", "rules")
        elapsed = time.monotonic() - started
    assert elapsed < 0.8 + 0.5, elapsed
    assert caught.value.status == 503 and caught.value.exit_code == 1
    message = str(caught.value)
    assert "503" in message and "GET /v1/admin/tenants/demo/rules" in message
    assert f"after {client.last_attempts} tries in" in message and client.last_attempts >= 3
    assert KEY not in message


def test_a_connection_reset_every_time_ends_with_unreachable_and_the_tries():
    """Every connection reset: Unreachable (exit 2, could not look), saying how many tries were made."""
    with peer(scripted(RESET)) as server, client_for(server.url, deadline=1.0) as client:
        with pytest.raises(Unreachable) as caught:
            client.recommend("demo", client.recommend_body("home", user_id="u1"))
    assert "tries in" in str(caught.value) and caught.value.sent


def test_a_conditional_write_answered_503_is_tried_again():
    """PUT with If-Match: 503, then 200: written once, in two tries."""
    with peer(scripted(reply(503), rules_answer())) as server, client_for(server.url) as client:
        doc, version = client.put_doc("demo", "rules", RULES, if_match=VERSION)
        assert (doc, version, client.last_attempts) == (RULES, VERSION, 2)
        assert all(b"if-match: " + VERSION.encode() in head.lower() for head in server.requests)


def test_a_conditional_write_whose_answer_was_lost_is_not_reported_as_a_conflict():
    """PUT with If-Match: the connection resets after the service applied it, the retry answers 409 (the version
    moved on); the current document is the one sent, so the write stands, applied once."""
    conflict = reply(409, {"status": 409, "code": "RECSYS_VERSION_MISMATCH", "detail": "version mismatch"})
    with peer(scripted(RESET, conflict, rules_answer())) as server, client_for(server.url) as client:
        doc, version = client.put_doc("demo", "rules", RULES, if_match="b" * 64)
        assert (doc, version) == (RULES, VERSION)
        assert [head.split(b" ", 1)[0] for head in server.requests] == [b"PUT", b"PUT", b"GET"]


def test_a_conflict_on_a_retried_write_stands_when_the_document_is_another():
    """The retry answers 409 and the current document is not the one sent: someone else wrote, the 409 stands."""
    conflict = reply(409, {"status": 409, "code": "RECSYS_VERSION_MISMATCH", "detail": "version mismatch"})
    other = reply(200, {"tenant_id": "demo", "rules_version": VERSION, "rules": []}, {"ETag": VERSION})
    with peer(scripted(reply(503), conflict, other)) as server, client_for(server.url) as client:
        with pytest.raises(ServiceProblem) as caught:
            client.put_doc("demo", "rules", RULES, if_match="b" * 64)
    assert caught.value.status == 409 and caught.value.exit_code == 3


def test_a_write_without_if_match_is_sent_once():
    """A cache invalidation (a POST without If-Match) answered 503 is not sent again: it could apply twice."""
    with peer(scripted(reply(503), reply(200, {"status": "applied"}))) as server, client_for(server.url) as client:
        with pytest.raises(ServiceProblem) as caught:
            client.invalidate("demo", ["popularity"], "home")
        assert caught.value.status == 503 and client.last_attempts == 1 and len(server.requests) == 1
        assert "tries" not in str(caught.value)


def test_readiness_answered_503_is_the_answer_and_asked_once():
    """/readyz answering 503 means 'not ready': it is returned at once, never waited out."""
    with peer(scripted(reply(503), reply(200))) as server, client_for(server.url) as client:
        answer = client.readyz()
        assert (answer.status, answer.attempts, len(server.requests)) == (503, 1, 1)


def test_a_request_that_is_not_transient_is_asked_once():
    """A 500 or a 404 is the service's real answer: one try."""
    for status in (500, 404):
        with peer(scripted(reply(status), rules_answer())) as server, client_for(server.url) as client:
            with pytest.raises(ServiceProblem):
                client.get_doc("demo", "rules")
            assert len(server.requests) == 1


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 100_000), seed=st.integers(0, 2**32), base=st.floats(0.001, 1.0),
       cap=st.floats(0.01, 5.0), retry_after=st.one_of(st.none(), st.text(max_size=8),
                                                        st.integers(-5, 10_000).map(str)))
def test_every_pause_lies_between_zero_and_the_cap(attempt, seed, base, cap, retry_after):
    """Whatever the attempt, the jitter and a Retry-After header (seconds, garbage or huge), a pause is at most the
    cap and at most the exponential ceiling unless the service asked for longer; the thousandth try of a long deadline
    pauses like the tenth."""
    pause = RetryPolicy(base=base, cap=cap, rng=random.Random(seed)).pause(attempt, retry_after)
    ceiling = float(min(Fraction(cap), Fraction(base) * 2 ** (attempt - 1)))  # exact: no overflow at any attempt
    asked = None
    try:
        asked = float(retry_after) if retry_after is not None else None
    except ValueError:
        asked = None
    assert 0 <= pause <= cap
    assert pause <= max(ceiling, min(cap, asked) if asked is not None else 0.0)


@pytest.mark.parametrize(("method", "path", "headers", "expected"), [
    ("GET", "/v1/admin/tenants/demo/rules", {}, True),
    ("POST", "/v1/recommend", {}, True),
    ("POST", "/v1/recommend/validate", {}, True),
    ("PUT", "/v1/admin/tenants/demo/rules", {"If-Match": VERSION}, True),
    ("PUT", "/v1/admin/tenants/demo/rules", {}, False),
    ("POST", "/v1/admin/tenants/demo/cache/invalidate", {}, False),
])
def test_only_reads_and_conditional_writes_may_be_sent_again(method, path, headers, expected):
    """The rule, request by request."""
    assert may_retry(method, path, headers) is expected


def test_the_tries_are_json_free_of_the_key():
    """What a caller shows of a retried call never carries the API key."""
    with peer(scripted(reply(503), rules_answer())) as server, client_for(server.url) as client:
        client.get_doc("demo", "rules")
        assert KEY not in json.dumps({"attempts": client.last_attempts, "request": client.last_request_id})
