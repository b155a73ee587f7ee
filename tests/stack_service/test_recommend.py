"""POST /v1/recommend and /v1/recommend/validate over a file store: shapes, validation, failure table, ranking."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.stack

HEX64 = re.compile(r"^[0-9a-f]{64}$")
POPULAR = [("sku-0001", 50), ("sku-0002", 40), ("sku-0003", 40), ("sku-0004", 30), ("sku-0005", 20), ("sku-0006", 10)]


def ids(response):
    return [item["item_id"] for item in response.json()["items"]]


def codes(response):
    return [w["code"] for w in response.json().get("warnings", [])]


def assert_problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "code", "request_id"}
    assert body["status"] == status and body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture()
def tenant(file_stack):
    """A fresh tenant with popularity published for surface home and the default config and rules."""
    name = file_stack.new_tenant("rec")
    file_stack.publish(name, "home", POPULAR)
    file_stack.admin.put(
        name, "config", {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}}, actor_sub="t", actor_type="system"
    )
    file_stack.admin.put(name, "rules", [], actor_sub="t", actor_type="system")
    return name


def test_recommend_returns_the_documented_shape(file_stack, client, tenant):
    """items/meta/warnings as in the interface, scores as integers, X-Request-Id echoed."""
    response = client.post(
        "/v1/recommend",
        json={"surface": "home", "k": 3, "user": {"user_id": "u1"}},
        headers={"X-Org-Id": tenant, "X-Request-Id": "req-123"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-123"
    body = response.json()
    assert set(body) == {"items", "meta"}  # warnings omitted when empty
    assert body["items"] == [
        {"item_id": "sku-0001", "rank": 1, "score": 50},
        {"item_id": "sku-0002", "rank": 2, "score": 40},
        {"item_id": "sku-0003", "rank": 3, "score": 40},
    ]
    assert '"score":50' in response.text.replace(" ", "")
    meta = body["meta"]
    assert meta["tenant_id"] == tenant and meta["surface"] == "home" and meta["segment"] == "default"
    assert meta["algo_version"] == "recsys-algo@local"
    assert HEX64.match(meta["config_version"]) and HEX64.match(meta["rules_version"])
    assert meta["request_id"] == "req-123"
    assert meta["counts"] == {"returned": 3}


def test_recommend_defaults_k_and_generates_a_request_id(client, tenant):
    """k defaults to 20 with a DEFAULT_APPLIED warning; a request id is generated when none is sent."""
    response = client.post(
        "/v1/recommend", json={"surface": "home", "user": {"session_id": "s"}}, headers={"X-Org-Id": tenant}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["warnings"] == [{"code": "DEFAULT_APPLIED", "detail": "k defaulted to 20"}]
    assert len(body["items"]) == len(POPULAR)
    assert response.headers["x-request-id"] == body["meta"]["request_id"] != ""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"surface": "home", "user": {"user_id": "u"}, "colour": "red"}, 400),
        ({"surface": "home", "user": {"user_id": "u", "email": "x"}}, 400),
        ({"surface": "home", "user": {"user_id": "u"}, "candidates": {"only": []}}, 400),
        ({"surface": "home", "user": {"user_id": "u"}, "k": "10"}, 400),
        ({"user": {"user_id": "u"}}, 400),
        ({"surface": "", "user": {"user_id": "u"}}, 400),
        ({"surface": "home", "user": {"user_id": "u"}, "k": 0}, 422),
        ({"surface": "home", "user": {"user_id": "u"}, "k": 201}, 422),
        ({"surface": "home"}, 422),
        ({"surface": "home", "user": {}}, 422),
        ({"surface": "../etc", "user": {"user_id": "u"}}, 400),
    ],
)
def test_recommend_rejects_bad_requests(client, tenant, body, status):
    """Unknown fields, wrong types, a missing or unsafe surface: 400; no user, or k outside 1..200: 422."""
    response = client.post("/v1/recommend", json=body, headers={"X-Org-Id": tenant})
    assert_problem(response, status, "RECSYS_INVALID_REQUEST")


@pytest.mark.parametrize("body", [b"{not json", b"[" * 50_000], ids=["syntax", "nested-past-the-parser"])
def test_recommend_rejects_a_body_that_is_not_json(client, tenant, body):
    """A body that is not JSON, or nested deeper than the parser follows, is a 400 problem, not a 500."""
    response = client.post("/v1/recommend", content=body, headers={"X-Org-Id": tenant})
    assert_problem(response, 400, "RECSYS_INVALID_REQUEST")


def test_recommend_requires_a_known_tenant(client):
    """No X-Org-Id is 400; an unknown tenant is 404 RECSYS_TENANT_NOT_FOUND."""
    body = {"surface": "home", "user": {"user_id": "u"}}
    assert_problem(client.post("/v1/recommend", json=body), 400, "RECSYS_INVALID_REQUEST")
    assert_problem(
        client.post("/v1/recommend", json=body, headers={"X-Org-Id": "nobody"}), 404, "RECSYS_TENANT_NOT_FOUND"
    )


def test_recommend_checks_an_api_key_when_one_is_sent(client, tenant):
    """A wrong X-API-Key is 401 RECSYS_AUTH_INVALID; the right one or none is accepted."""
    body = {"surface": "home", "user": {"user_id": "u"}}
    wrong = client.post("/v1/recommend", json=body, headers={"X-Org-Id": tenant, "X-API-Key": "wrong"})
    assert_problem(wrong, 401, "RECSYS_AUTH_INVALID")
    from stack_service.servicekit import API_KEY  # noqa: PLC0415 - the same key the fixture started the service with

    right = client.post("/v1/recommend", json=body, headers={"X-Org-Id": tenant, "X-API-Key": API_KEY})
    assert right.status_code == 200


def test_validate_returns_the_normalized_request_without_ranking(client, tenant):
    """/v1/recommend/validate fills defaults and returns normalized_request, warnings and meta, no items."""
    response = client.post(
        "/v1/recommend/validate",
        json={"surface": "home", "user": {"user_id": "u1"}, "candidates": {"exclude_ids": ["sku-0001"]}},
        headers={"X-Org-Id": tenant, "X-Request-Id": "v-1"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"normalized_request", "warnings", "meta"}
    assert body["normalized_request"] == {
        "surface": "home",
        "segment": "default",
        "k": 20,
        "user": {"user_id": "u1"},
        "candidates": {"exclude_ids": ["sku-0001"]},
    }
    assert body["meta"]["request_id"] == "v-1" and body["meta"]["tenant_id"] == tenant
    assert_problem(
        client.post("/v1/recommend/validate", json={"surface": "home", "x": 1}, headers={"X-Org-Id": tenant}),
        400,
        "RECSYS_INVALID_REQUEST",
    )


def test_missing_manifest_serves_an_empty_list(file_stack, client):
    """No manifest for the surface (and none for default): 200 with items [] and no specific warning."""
    tenant = file_stack.new_tenant("nomanifest")
    response = file_stack.recommend(client, tenant, k=5)
    assert response.status_code == 200
    assert response.json()["items"] == [] and "warnings" not in response.json()


def test_missing_popularity_kind_or_blob_serves_an_empty_list(file_stack, client):
    """A manifest without current.popularity, or pointing at a missing blob, serves 200 items []."""
    tenant = file_stack.new_tenant("noblob")
    file_stack.put_manifest(tenant, "home", {"cooc": file_stack.writer.uri("objectstore/x/cooc.json")})
    file_stack.put_manifest(
        tenant,
        "search",
        {"popularity": file_stack.writer.uri(f"objectstore/{tenant}/search/popularity/{'0' * 64}.json")},
    )
    for surface in ("home", "search"):
        response = file_stack.recommend(client, tenant, surface, k=5)
        assert response.status_code == 200 and response.json()["items"] == []


def test_surface_without_items_falls_back_to_default(file_stack, client):
    """A surface with no popularity items is served from surface 'default'."""
    tenant = file_stack.new_tenant("fallback")
    file_stack.publish(tenant, "home", [])
    file_stack.publish(tenant, "default", [("sku-0009", 7)])
    response = file_stack.recommend(client, tenant, k=5)
    assert ids(response) == ["sku-0009"]
    assert response.json()["meta"]["surface"] == "home"


@pytest.mark.parametrize(
    "manifest",
    [
        b"{not json",
        b'{"v": 2, "tenant": "T", "surface": "home", "current": {}, "updated_at": "2026-01-02T00:00:00Z"}',
        b'{"v": 1, "tenant": "other", "surface": "home", "current": {}, "updated_at": "2026-01-02T00:00:00Z"}',
        b'{"v": 1, "tenant": "T", "surface": "search", "current": {}, "updated_at": "2026-01-02T00:00:00Z"}',
        b'{"v": 1, "tenant": "T", "surface": "home", "current": {}, "updated_at": "2026-01-02T00:00:00Z", "x": 1}',
    ],
    ids=["invalid-json", "wrong-v", "wrong-tenant", "wrong-surface", "extra-field"],
)
def test_incompatible_manifest_is_422(file_stack, client, manifest):
    """A corrupt or foreign manifest is 422 RECSYS_ARTIFACT_INCOMPATIBLE and counts a manifest load failure."""
    tenant = file_stack.new_tenant("corrupt")
    file_stack.writer.put(
        file_stack.manifest_key(tenant, "home"), manifest.replace(b'"T"', json.dumps(tenant).encode())
    )
    assert_problem(file_stack.recommend(client, tenant), 422, "RECSYS_ARTIFACT_INCOMPATIBLE")
    metrics = client.get("/metrics").text
    assert re.search(r'recsys_artifact_load_failures_total\{kind="manifest"\} [1-9]', metrics)


def test_blob_of_the_wrong_type_is_422(file_stack, client):
    """A popularity URI that holds a cooc artifact is 422 RECSYS_ARTIFACT_INCOMPATIBLE."""
    tenant = file_stack.new_tenant("wrongtype")
    current = file_stack.publish(tenant, "home", [("sku-0001", 1)], cooc={"sku-0001": [("sku-0002", 1)]})
    file_stack.put_manifest(tenant, "home", {"popularity": current["cooc"]})
    assert_problem(file_stack.recommend(client, tenant), 422, "RECSYS_ARTIFACT_INCOMPATIBLE")


def test_unreadable_store_path_is_500(file_stack, client):
    """A store path that is broken (a file where a directory should be) is 500 RECSYS_INTERNAL, not an empty list."""
    tenant = file_stack.new_tenant("broken")
    root = file_stack.writer.root
    (root / "registry" / "current" / tenant).write_text("not a directory")
    assert_problem(file_stack.recommend(client, tenant), 500, "RECSYS_INTERNAL")


def test_blob_over_the_size_limit_is_500(tmp_path):
    """An artifact larger than RECSYS_ARTIFACT_MAX_BYTES is 500 RECSYS_INTERNAL."""
    from stack_service.servicekit import file_service

    with file_service(tmp_path, max_bytes=300) as service, service.client() as http:
        tenant = service.new_tenant()
        service.publish(tenant, "home", [(f"sku-{n:04d}", n) for n in range(1, 12)])
        assert_problem(service.recommend(http, tenant), 500, "RECSYS_INTERNAL")


def test_all_weights_zero_means_no_signal(file_stack, client, tenant):
    """Weights all zero (request override here) return items [] with SIGNAL_UNAVAILABLE."""
    response = file_stack.recommend(client, tenant, k=5, weights={"pop": 0, "cooc": 0, "emb": 0})
    assert response.status_code == 200
    assert response.json()["items"] == [] and "SIGNAL_UNAVAILABLE" in codes(response)


def test_cooc_weight_adds_anchor_neighbours(file_stack, client):
    """score = w_pop*count + w_cooc*cooc count from the anchors; the neighbour moves up."""
    tenant = file_stack.new_tenant("cooc")
    file_stack.publish(tenant, "home", [("sku-0001", 10), ("sku-0002", 8)], cooc={"sku-0009": [("sku-0002", 6)]})
    plain = file_stack.recommend(client, tenant, k=2)
    assert ids(plain) == ["sku-0001", "sku-0002"]
    anchored = file_stack.recommend(client, tenant, k=2, anchors=["sku-0009"], weights={"pop": 1, "cooc": 1})
    assert anchored.json()["items"][0] == {"item_id": "sku-0002", "rank": 1, "score": 14}


def test_candidates_and_constraints_filter(file_stack, client, tenant):
    """exclude_ids, include_ids and tag constraints (catalog metadata) change what is served."""
    excluded = file_stack.recommend(client, tenant, k=3, candidates={"exclude_ids": ["sku-0001"]})
    assert ids(excluded) == ["sku-0002", "sku-0003", "sku-0004"]
    included = file_stack.recommend(client, tenant, candidates={"include_ids": ["sku-0004", "sku-0099"]}, k=5)
    assert ids(included) == ["sku-0004"] and "CANDIDATES_INCLUDE_FILTERED" in codes(included)
    even = file_stack.recommend(client, tenant, k=5, constraints={"required_tags": ["even"]})
    assert ids(even) == ["sku-0002", "sku-0004", "sku-0006"] and "CONSTRAINTS_FILTERED" in codes(even)
    one_each = file_stack.recommend(client, tenant, k=5, constraints={"max_per_tag": 2})
    assert ids(one_each) == ["sku-0001", "sku-0002"]


def test_rules_block_pin_and_boost_change_the_ranking(file_stack, client, tenant):
    """A PUT of rules plus a rules cache invalidation makes block, pin and boost visible in the ranking."""
    rules = [
        {"action": "block", "target_type": "item", "item_ids": ["sku-0001"]},
        {"action": "pin", "target_type": "item", "item_ids": ["sku-0011"], "priority": 5},
        {"action": "boost", "target_type": "category", "target_key": "music", "boost_value": 100},
        {"action": "block", "target_type": "brand", "target_key": "acme", "surface": "search"},
        {"action": "pin", "target_type": "item", "item_ids": ["sku-0012"], "enabled": False},
    ]
    assert ids(file_stack.recommend(client, tenant, k=4))[0] == "sku-0001"  # loads the empty rules into the cache
    put = client.put(f"/v1/admin/tenants/{tenant}/rules", json=rules, headers=file_stack.admin_headers())
    assert put.status_code == 200
    before = file_stack.recommend(client, tenant, k=4)
    assert ids(before)[0] == "sku-0001"  # the service still serves its cached rules
    file_stack.invalidate(client, tenant, ["rules"])
    after = file_stack.recommend(client, tenant, k=4)
    assert ids(after) == ["sku-0011", "sku-0005", "sku-0006", "sku-0002"]
    assert after.json()["items"][1]["score"] == 120
    assert after.json()["meta"]["rules_version"] == put.headers["etag"]
    assert "RULE_PIN_INJECTED" in codes(after)


def test_config_weights_change_the_ranking(file_stack, client, tenant):
    """Config weights scale scores; weights all zero in config give SIGNAL_UNAVAILABLE after invalidation."""
    headers = file_stack.admin_headers()
    client.put(
        f"/v1/admin/tenants/{tenant}/config",
        json={"weights": {"pop": 2.0, "cooc": 0.0, "emb": 0.0}},
        headers=headers,
    )
    file_stack.invalidate(client, tenant, ["config"])
    doubled = file_stack.recommend(client, tenant, k=1)
    assert doubled.json()["items"] == [{"item_id": "sku-0001", "rank": 1, "score": 100}]
    client.put(
        f"/v1/admin/tenants/{tenant}/config",
        json={"weights": {"pop": 0.0, "cooc": 0.0, "emb": 0.0}},
        headers=headers,
    )
    file_stack.invalidate(client, tenant, ["config"])
    zero = file_stack.recommend(client, tenant, k=1)
    assert zero.json()["items"] == [] and "SIGNAL_UNAVAILABLE" in codes(zero)


def test_metrics_count_requests_with_the_suite_names(file_stack, client, tenant):
    """/metrics exposes the suite's metric names with endpoint/outcome/empty labels."""
    file_stack.recommend(client, tenant, k=1)
    text = client.get("/metrics").text
    assert re.search(
        r'recsys_recommendation_requests_total\{empty="false",endpoint="recommend",outcome="success"\} [1-9]', text
    )
    assert "recsys_recommendation_latency_seconds_bucket" in text
    assert re.search(r"^recsys_artifact_manifest_age_seconds \d", text, re.M)
    assert re.search(r"^recsys_artifact_manifest_artifacts \d", text, re.M)
    assert 'recsys_artifact_load_failures_total{kind="popularity"}' in text


@pytest.mark.parametrize("sent", ["drill/42 probe=1", "Root=1-67a2-abc;Parent=53995c3f;Sampled=1", "a+b/c=="])
def test_any_printable_request_id_is_echoed(client, tenant, sent):
    """X-Request-Id is echoed as sent (header and meta), not only when it looks like a UUID."""
    response = client.post(
        "/v1/recommend",
        json={"surface": "home", "k": 1, "user": {"user_id": "u1"}},
        headers={"X-Org-Id": tenant, "X-Request-Id": sent},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == sent == response.json()["meta"]["request_id"]


def test_an_over_long_request_id_is_replaced(client, tenant):
    """An X-Request-Id longer than 200 characters is not echoed; a generated id takes its place."""
    response = client.post(
        "/v1/recommend",
        json={"surface": "home", "k": 1, "user": {"user_id": "u1"}},
        headers={"X-Org-Id": tenant, "X-Request-Id": "r" * 201},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == response.json()["meta"]["request_id"] != "r" * 201


def test_popularity_is_served_by_count_then_item_id_whatever_the_blob_order(file_stack, client):
    """Served popularity = items by count desc, ties by item_id, even when the blob lists them otherwise (§2.1)."""
    name = file_stack.new_tenant("order")
    file_stack.publish(name, "home", [("sku-0003", 5), ("sku-0001", 9), ("sku-0004", 9), ("sku-0002", 5)])
    response = file_stack.recommend(client, name, k=4)
    assert response.status_code == 200, response.text
    assert [(i["item_id"], i["score"]) for i in response.json()["items"]] == [
        ("sku-0001", 9), ("sku-0004", 9), ("sku-0002", 5), ("sku-0003", 5),
    ]  # fmt: skip
