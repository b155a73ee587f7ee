"""Admin API: config and rules with ETag / If-Match, audit log with keyset pagination, cache invalidation, auth."""

from __future__ import annotations

import hashlib
import re

import pytest
from stack_service.servicekit import API_KEY

pytestmark = pytest.mark.stack

HEX64 = re.compile(r"^[0-9a-f]{64}$")
CONFIG_A = {
    "weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0},
    "flags": {},
    "limits": {"max_k": 200},
    "algo": "popularity",
}
CONFIG_B = {"weights": {"pop": 1.0, "cooc": 0.0, "emb": 0.0}, "algo": "popularity"}


def assert_problem(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return response.json()


@pytest.fixture()
def tenant(file_stack):
    """A fresh tenant with no documents."""
    return file_stack.new_tenant("adm")


@pytest.fixture()
def headers(file_stack):
    """Admin headers with the service's API key."""
    return file_stack.admin_headers()


def test_put_then_get_config_returns_body_and_bare_etag(client, tenant, headers):
    """PUT stores the config; GET returns {tenant_id, config_version, config} and ETag = the bare 64-hex version."""
    put = client.put(
        f"/v1/admin/tenants/{tenant}/config", json=CONFIG_A, headers=headers
    )
    assert put.status_code == 200
    version = put.headers["etag"]
    assert HEX64.match(version)
    get = client.get(f"/v1/admin/tenants/{tenant}/config", headers=headers)
    assert get.status_code == 200 and get.headers["etag"] == version
    assert get.json() == {"tenant_id": tenant, "config_version": version, "config": CONFIG_A}


def test_version_is_sha256_of_the_canonical_jsonb_text(client, tenant, headers):
    """The version hashes the jsonb text: keys by length then bytes, ', ' and ': ' separators, non-ASCII kept."""
    config = {"algo": "é", "weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}}
    text = '{"algo": "é", "weights": {"emb": 0.0, "pop": 1.0, "cooc": 0.5}}'
    put = client.put(f"/v1/admin/tenants/{tenant}/config", json=config, headers=headers)
    assert put.headers["etag"] == hashlib.sha256(text.encode()).hexdigest()


def test_if_match_must_be_the_current_bare_version(client, tenant, headers):
    """If-Match with a stale version, a quoted or a weak ETag is 409 RECSYS_VERSION_MISMATCH; the bare one applies."""
    url = f"/v1/admin/tenants/{tenant}/config"
    first = client.put(url, json=CONFIG_A, headers=headers).headers["etag"]
    for wrong in ("0" * 64, f'"{first}"', f'W/"{first}"'):
        response = client.put(url, json=CONFIG_B, headers={**headers, "If-Match": wrong})
        assert_problem(response, 409, "RECSYS_VERSION_MISMATCH")
    assert client.get(url, headers=headers).headers["etag"] == first
    second = client.put(url, json=CONFIG_B, headers={**headers, "If-Match": first})
    assert second.status_code == 200 and second.headers["etag"] != first


def test_identical_put_is_a_noop_and_older_document_is_a_rollback(client, tenant, headers):
    """Re-PUT of the current document writes no audit entry; PUT of an older one repoints to it and is audited."""
    url = f"/v1/admin/tenants/{tenant}/config"
    v_a = client.put(url, json=CONFIG_A, headers=headers).headers["etag"]
    v_b = client.put(url, json=CONFIG_B, headers=headers).headers["etag"]
    again = client.put(url, json=CONFIG_B, headers=headers)
    assert again.headers["etag"] == v_b
    back = client.put(url, json=CONFIG_A, headers={**headers, "If-Match": v_b})
    assert back.headers["etag"] == v_a
    entries = client.get(f"/v1/admin/tenants/{tenant}/audit", headers=headers).json()["entries"]
    assert [e["action"] for e in entries] == ["config.update"] * 3
    assert [e["entity_id"] for e in entries] == [v_a, v_b, v_a]
    newest = entries[0]
    assert newest["before_state"] == CONFIG_B and newest["after_state"] == CONFIG_A
    assert newest["extra"]["rollback"] is True
    assert entries[-1]["before_state"] is None


def test_audit_entries_have_the_documented_fields_and_actor(client, tenant, headers):
    """Audit entries carry id, RFC 3339 time, the API key's identity as actor (X-Actor ignored), request id, states."""
    url = f"/v1/admin/tenants/{tenant}/rules"
    client.put(url, json=[], headers={**headers, "X-Request-Id": "audit-1"})
    client.put(
        url, json=[{"action": "block", "item_ids": ["sku-0001"]}], headers={**headers, "X-Actor": "alice"}
    )
    entries = client.get(f"/v1/admin/tenants/{tenant}/audit", headers=headers).json()["entries"]
    assert set(entries[0]) == {
        "id",
        "occurred_at",
        "tenant_id",
        "actor_sub",
        "actor_type",
        "action",
        "entity_type",
        "entity_id",
        "request_id",
        "before_state",
        "after_state",
        "extra",
    }
    key_id = "api-key:" + hashlib.sha256(API_KEY.encode()).hexdigest()[:8]
    assert entries[0]["actor_sub"] == key_id and entries[0]["actor_type"] == "api_key"  # X-Actor is not the suite's
    assert entries[1]["actor_sub"] == key_id
    assert entries[1]["actor_type"] == "api_key" and entries[1]["request_id"] == "audit-1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", entries[0]["occurred_at"])
    assert entries[0]["action"] == "rules.update" and entries[0]["entity_type"] == "rules"


def test_audit_paginates_newest_first_with_a_keyset_cursor(client, tenant, headers):
    """limit pages the log; next_before/next_before_id fetch the next page; the last page has no cursor."""
    url = f"/v1/admin/tenants/{tenant}/config"
    versions = [
        client.put(url, json={"weights": {"pop": float(n)}}, headers=headers).headers["etag"]
        for n in range(1, 6)
    ]
    audit = f"/v1/admin/tenants/{tenant}/audit"
    seen, params = [], {"limit": 2}
    for _ in range(5):
        page = client.get(audit, params=params, headers=headers).json()
        seen += [e["entity_id"] for e in page["entries"]]
        if "next_before" not in page:
            break
        params = {"limit": 2, "before": page["next_before"], "before_id": page["next_before_id"]}
    assert seen == versions[::-1]
    assert_problem(client.get(audit, params={"limit": "many"}, headers=headers), 400, "RECSYS_INVALID_REQUEST")
    assert_problem(client.get(audit, params={"before": "yesterday"}, headers=headers), 400, "RECSYS_INVALID_REQUEST")


def test_missing_documents_and_tenants_are_404(client, tenant, headers):
    """No config/rules yet → RECSYS_CONFIG_NOT_FOUND / RECSYS_RULES_NOT_FOUND; unknown tenant → RECSYS_TENANT_NOT_FOUND."""
    assert_problem(client.get(f"/v1/admin/tenants/{tenant}/config", headers=headers), 404, "RECSYS_CONFIG_NOT_FOUND")
    assert_problem(client.get(f"/v1/admin/tenants/{tenant}/rules", headers=headers), 404, "RECSYS_RULES_NOT_FOUND")
    for path in ("config", "rules", "audit"):
        assert_problem(client.get(f"/v1/admin/tenants/ghost/{path}", headers=headers), 404, "RECSYS_TENANT_NOT_FOUND")
    response = client.put("/v1/admin/tenants/ghost/config", json=CONFIG_A, headers=headers)
    assert_problem(response, 404, "RECSYS_TENANT_NOT_FOUND")


@pytest.mark.parametrize(
    ("kind", "body", "status"),
    [
        ("config", {"weights": {"pop": -1}}, 422),
        ("config", {"weights": {"pop": "high"}}, 422),
        ("config", {"limits": {"max_k": 500}}, 422),
        ("config", [1, 2], 422),
        ("config", "weights", 422),
        ("rules", [{"action": "hide", "item_ids": ["a"]}], 422),
        ("rules", [{"action": "pin", "target_type": "tag"}], 422),
        ("rules", [{"action": "boost", "item_ids": ["a"]}], 422),
        ("rules", [{"action": "block", "item_ids": ["a"], "valid_from": "soon"}], 422),
        ("rules", [{"action": "block", "item_ids": ["a"], "colour": 1}], 422),
        ("rules", "block", 422),
    ],
)
def test_invalid_documents_are_refused(client, tenant, headers, kind, body, status):
    """Invalid config/rules are 400/422 RECSYS_INVALID_CONFIG / RECSYS_INVALID_RULES and change nothing."""
    response = client.put(f"/v1/admin/tenants/{tenant}/{kind}", json=body, headers=headers)
    assert_problem(response, status, "RECSYS_INVALID_CONFIG" if kind == "config" else "RECSYS_INVALID_RULES")
    assert client.get(f"/v1/admin/tenants/{tenant}/audit", headers=headers).json()["entries"] == []


def test_admin_needs_the_api_key(client, tenant):
    """No X-API-Key is 401 RECSYS_AUTH_REQUIRED; a wrong one is 401 RECSYS_AUTH_INVALID."""
    url = f"/v1/admin/tenants/{tenant}/config"
    assert_problem(client.get(url), 401, "RECSYS_AUTH_REQUIRED")
    assert_problem(client.get(url, headers={"X-API-Key": "nope"}), 401, "RECSYS_AUTH_INVALID")
    assert_problem(client.put(url, json=CONFIG_A), 401, "RECSYS_AUTH_REQUIRED")


def test_org_id_must_match_the_path_tenant(file_stack, client, tenant):
    """X-Org-Id naming another tenant than the path is 403 RECSYS_TENANT_SCOPE_MISMATCH; the same one is fine."""
    other = file_stack.new_tenant("other")
    url = f"/v1/admin/tenants/{tenant}/cache/invalidate"
    mismatch = client.post(url, json={"targets": ["config"]}, headers=file_stack.admin_headers(other))
    assert_problem(mismatch, 403, "RECSYS_TENANT_SCOPE_MISMATCH")
    get = client.get(f"/v1/admin/tenants/{tenant}/audit", headers=file_stack.admin_headers(other))
    assert_problem(get, 403, "RECSYS_TENANT_SCOPE_MISMATCH")
    same = client.post(url, json={"targets": ["config"]}, headers=file_stack.admin_headers(tenant))
    assert same.status_code == 200


def test_cache_invalidate_returns_counts_and_is_audited(file_stack, client, tenant, headers):
    """Invalidate returns {tenant_id, targets, surface, status, invalidated} and appends a cache.invalidate entry."""
    file_stack.publish(tenant, "home", [("sku-0001", 3)])
    assert file_stack.recommend(client, tenant).status_code == 200  # fills the manifest and blob caches
    body = file_stack.invalidate(client, tenant, ["popularity", "config", "rules"], surface="home")
    assert body == {
        "tenant_id": tenant,
        "targets": ["popularity", "config", "rules"],
        "surface": "home",
        "status": "applied",
        "invalidated": {"popularity": 2, "config": 0, "rules": 0},
    }
    entry = client.get(f"/v1/admin/tenants/{tenant}/audit", headers=headers).json()["entries"][0]
    assert entry["action"] == "cache.invalidate"
    assert entry["extra"] == {
        "targets": ["popularity", "config", "rules"],
        "surface": "home",
        "invalidated": body["invalidated"],
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"targets": []}, 400, "RECSYS_INVALID_TARGETS"),
        ({}, 400, "RECSYS_INVALID_TARGETS"),
        ({"targets": ["popularity", "everything"]}, 422, "RECSYS_INVALID_TARGETS"),
        ({"targets": ["config"], "surface": "a/b"}, 422, "RECSYS_INVALID_REQUEST"),
    ],
)
def test_cache_invalidate_rejects_bad_targets(client, tenant, headers, body, status, code):
    """Empty targets are 400, unknown targets 422 RECSYS_INVALID_TARGETS."""
    response = client.post(f"/v1/admin/tenants/{tenant}/cache/invalidate", json=body, headers=headers)
    assert_problem(response, status, code)


def test_popularity_invalidation_serves_a_new_manifest(file_stack, client, tenant):
    """After a new publish the cached manifest keeps serving old items until popularity is invalidated."""
    file_stack.publish(tenant, "home", [("sku-0001", 5)])
    file_stack.publish(tenant, "search", [("sku-0003", 5)])
    for surface in ("home", "search"):
        file_stack.recommend(client, tenant, surface)
    file_stack.publish(tenant, "home", [("sku-0002", 9)])
    file_stack.publish(tenant, "search", [("sku-0004", 9)])
    assert file_stack.recommend(client, tenant).json()["items"][0]["item_id"] == "sku-0001"
    file_stack.invalidate(client, tenant, ["popularity"], surface="home")
    assert file_stack.recommend(client, tenant).json()["items"][0]["item_id"] == "sku-0002"
    assert file_stack.recommend(client, tenant, "search").json()["items"][0]["item_id"] == "sku-0003"
    file_stack.invalidate(client, tenant, ["popularity"])
    assert file_stack.recommend(client, tenant, "search").json()["items"][0]["item_id"] == "sku-0004"


def test_unknown_paths_are_problems(client):
    """Unknown endpoints and methods answer problem+json too."""
    assert_problem(client.get("/v1/nothing"), 404, "RECSYS_NOT_FOUND")
    assert_problem(client.get("/v1/recommend"), 405, "RECSYS_METHOD_NOT_ALLOWED")


def test_put_body_is_the_raw_document_and_an_empty_body_is_refused(client, tenant, headers):
    """The PUT body is the document itself (as the suite takes it); an empty or non-JSON body is 400."""
    url = f"/v1/admin/tenants/{tenant}/config"
    put = client.put(url, json=CONFIG_A, headers=headers)
    assert put.status_code == 200 and put.json()["config"] == CONFIG_A
    assert client.get(url, headers=headers).json()["config"] == CONFIG_A
    for body in (b"", b"  ", b"{not json"):
        response = client.put(url, content=body, headers={**headers, "Content-Type": "application/json"})
        assert_problem(response, 400, "RECSYS_INVALID_CONFIG")
    rules = client.put(f"/v1/admin/tenants/{tenant}/rules", content=b"", headers=headers)
    assert_problem(rules, 400, "RECSYS_INVALID_RULES")


def test_a_wrapped_document_is_stored_as_given_like_the_suite_does(client, tenant, headers):
    """{"config": {...}} is a config the suite accepts and stores as is; the engine sees none of its weights."""
    url = f"/v1/admin/tenants/{tenant}/config"
    wrapped = {"config": {"weights": {"pop": 0.0}}}
    put = client.put(url, json=wrapped, headers=headers)
    assert put.status_code == 200
    assert client.get(url, headers=headers).json()["config"] == wrapped
    rules = client.put(f"/v1/admin/tenants/{tenant}/rules", json={"rules": []}, headers=headers)
    assert rules.status_code == 200


@pytest.mark.parametrize(
    ("written", "jsonb"),
    [("0.70", "0.70"), ("2.50", "2.50"), ("3.14159265358979323846", "3.14159265358979323846"), ("1E+2", "100"),
     ("1.5e-3", "0.0015"), ("100e-2", "1.00"), ("-0.0", "0.0"), ("12345678901234567890", "12345678901234567890")],
)
def test_versions_keep_numbers_as_written_like_jsonb(client, tenant, headers, written, jsonb):
    """The version hashes the number as jsonb prints it (digits as written, no exponent, no -0), and GET gives it
    back as written."""
    url = f"/v1/admin/tenants/{tenant}/config"
    body = f'{{"weights": {{"pop": {written}}}}}'.encode()
    put = client.put(url, content=body, headers={**headers, "Content-Type": "application/json"})
    assert put.status_code == 200, put.text
    text = f'{{"weights": {{"pop": {jsonb}}}}}'
    assert put.headers["etag"] == hashlib.sha256(text.encode()).hexdigest()
    assert f'"pop":{jsonb}' in client.get(url, headers=headers).text


def test_a_utf8_org_id_matches_the_same_tenant_in_the_path(client, headers):
    """X-Org-Id is read as UTF-8, as the suite reads it: a Cyrillic tenant is 'not found', not a scope mismatch."""
    name = "дemo"
    response = client.get(f"/v1/admin/tenants/{name}/config",
                          headers={"X-API-Key": headers["X-API-Key"], "X-Org-Id": name.encode()})
    assert_problem(response, 404, "RECSYS_TENANT_NOT_FOUND")
