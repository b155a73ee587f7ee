"""recs.probe classification and recs.served_vs_published verdicts, each detector firing and quiet."""

from __future__ import annotations

import copy
import dataclasses

import httpx
import pytest

from recsys_checks.judge.registry.published import ManifestState
from recsys_checks.judge.serving.blockrules import active_blocks
from recsys_checks.judge.serving.probe import check_recommendations
from recsys_checks.judge.serving.served import check_served_vs_published, explain
from recsys_checks.reach.service import ServiceClient

from .conftest import POP_V1, POP_V2, V1, V2


def test_probe_with_items_is_ok_and_reports_versions(service, target, client, manifest_of):
    """Items returned → ok, with config/rules versions and the normalised request from /validate."""
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.status == "ok", result.summary
    assert [i["item_id"] for i in result.data["items"]][:2] == ["sku-0001", "sku-0002"]
    assert result.data["config_version"] == service.current[("demo", "config")]
    assert result.data["rules_version"] == service.current[("demo", "rules")]
    assert result.data["validate"]["normalized_request"]["k"] == 10
    assert {r.url.path for r in service.requests} == {"/v1/recommend", "/v1/recommend/validate"}


def test_probe_names_config_weights_when_the_signal_is_unavailable(service, target, client, manifest_of):
    """All weights 0 → SIGNAL_UNAVAILABLE → cause config_weights pointing at the config revert."""
    service.seed("config", {**service.doc("config"), "weights": {"pop": 0.0, "cooc": 0.0, "emb": 0.0}})
    service.cached[("demo", "config")] = service.current[("demo", "config")]
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.status == "fail"
    assert result.data["cause"] == "config_weights" and result.data["runbook"] == "rollback-config-rules"
    assert "SIGNAL_UNAVAILABLE" in result.summary


def test_probe_names_rules_when_every_candidate_is_blocked(service, target, client, manifest_of):
    """A block rule covering every artifact item → cause rules_block_all."""
    ids = [i["item_id"] for i in POP_V1]
    service.seed("rules", [{"action": "block", "target_type": "item", "item_ids": ids}])
    service.cached[("demo", "rules")] = service.current[("demo", "rules")]
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.status == "fail" and result.data["cause"] == "rules_block_all"
    assert "blocked" in result.summary and "rollback-config-rules" in result.summary


def test_probe_does_not_blame_rules_that_block_only_some_items(service, target, client, manifest_of):
    """A partial block leaves items: ok."""
    service.seed("rules", [{"action": "block", "target_type": "item", "item_ids": ["sku-0001"]}])
    service.cached[("demo", "rules")] = service.current[("demo", "rules")]
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.status == "ok" and "sku-0001" not in [i["item_id"] for i in result.data["items"]]


@pytest.mark.parametrize(
    ("state", "cause", "runbook"),
    [
        ("missing", "manifest_missing", "stale-manifest"),
        ("no_popularity", "no_popularity", "rollback-manifest"),
        ("missing_blob", "missing_blob", "rollback-manifest"),
        ("empty", "empty_artifact", "rollback-manifest"),
        ("invalid", "artifact_invalid", "rollback-manifest"),
    ],
)
def test_probe_names_the_manifest_state_behind_an_empty_answer(service, target, client, manifest_of, state, cause,
                                                               runbook):
    """The service's 200-with-no-items is explained by the registry's state."""
    service.served["home"] = []
    items = [] if state == "empty" else None
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of(state, items=items))
    assert result.status == "fail"
    assert (result.data["cause"], result.data["runbook"]) == (cause, runbook)
    assert result.data["manifest"]["state"] == state


def test_probe_suspects_a_stale_cache_when_the_manifest_has_items_but_nothing_is_served(service, target, client,
                                                                                        manifest_of):
    """Manifest fine with items, service empty, no rules or filters → cache_stale with the invalidate command."""
    service.served["home"] = []
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.data["cause"] == "cache_stale" and "cache invalidate" in result.summary


@pytest.mark.parametrize(
    ("status", "code", "cause"),
    [
        (422, "RECSYS_ARTIFACT_INCOMPATIBLE", "artifact_incompatible"),
        (500, "RECSYS_INTERNAL", "store_unreachable"),
        (404, "RECSYS_TENANT_NOT_FOUND", "unknown_tenant"),
        (400, "RECSYS_INVALID_REQUEST", "bad_request"),
    ],
)
def test_probe_classifies_problem_answers(service, target, client, manifest_of, status, code, cause):
    """Problem codes map to causes; 422 and 500 also report what the registry says."""
    service.recommend_problem = (status, code, "broken")
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of("unreachable"))
    assert result.status == "fail" and result.data["cause"] == cause
    assert result.data["problem"]["code"] == code
    assert ("manifest" in result.data) == (status in (422, 500))


def test_a_500_over_a_blob_that_cannot_be_read_is_an_artifact_problem(service, target, client, manifest_of):
    """The service fails because the popularity blob it serves from is unreadable (a directory, a FIFO): an artifact
    problem rolled back by kind, not a store or process problem."""
    service.recommend_problem = (500, "RECSYS_INTERNAL", "read failed")
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of("invalid"))
    assert result.data["cause"] == "artifact_invalid" and result.data["broken_kind"] == "popularity"
    manifest_only = lambda *a: ManifestState("invalid", "manifest at x is not valid: truncated")  # noqa: E731
    quiet = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_only)
    assert quiet.data["cause"] == "store_unreachable"  # an invalid manifest (no blob named) is not this


def test_probe_of_an_unknown_tenant_fails_naming_the_tenant(target, client, manifest_of):
    """The fake answers 404 RECSYS_TENANT_NOT_FOUND for a tenant it does not have."""
    result = check_recommendations(target, "nobody", "home", client=client, manifest_reader=manifest_of())
    assert result.data["cause"] == "unknown_tenant" and "'nobody'" in result.summary


def test_probe_of_an_unreachable_service_is_a_fail_result(service, target, client, manifest_of):
    """Connection refused → fail result, not an exception."""
    service.down = httpx.ConnectError("refused")
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.status == "fail" and result.data["cause"] == "unreachable"


def test_served_vs_published_is_consistent_when_the_service_serves_the_manifest_version(target, client, manifest_of,
                                                                                          history_of):
    """Served scores and order match the current artifact → ok."""
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=manifest_of(version=V1),
                                 history_reader=history_of((V1, POP_V1)))
    assert result.status == "ok" and result.data["verdict"] == "consistent", result.summary


def test_served_vs_published_detects_a_stale_service_cache_and_names_both_versions(service, target, client,
                                                                                     manifest_of, history_of):
    """Manifest names v2, the service still serves v1 → fail 'service cache stale: serving v1 while manifest names v2'."""
    service.published["home"] = copy.deepcopy(POP_V2)
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=manifest_of(version=V2),
                                 history_reader=history_of((V2, POP_V2), (V1, POP_V1)))
    assert result.status == "fail" and result.data["verdict"] == "cache_stale"
    assert result.summary.startswith(f"service cache stale: serving {V1[:12]} while manifest names {V2[:12]}")
    assert "invalidate popularity cache" in result.summary


def test_served_vs_published_is_quiet_again_after_the_popularity_cache_is_invalidated(service, target, client,
                                                                                        manifest_of, history_of):
    """After invalidation the service serves v2 → consistent."""
    service.published["home"] = copy.deepcopy(POP_V2)
    client.invalidate("demo", ["popularity"], "home")
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=manifest_of(version=V2),
                                 history_reader=history_of((V2, POP_V2), (V1, POP_V1)))
    assert result.data["verdict"] == "consistent", result.summary


def test_served_vs_published_tolerates_rules_that_block_pin_and_boost(service, target, client, manifest_of,
                                                                        history_of):
    """Blocked, pinned and one boosted item do not hide that the service serves the manifest's version."""
    service.seed("rules", [
        {"action": "block", "target_type": "item", "item_ids": ["sku-0002"]},
        {"action": "pin", "target_type": "item", "item_ids": ["sku-0005"]},
        {"action": "boost", "target_type": "item", "item_ids": ["sku-0004"], "boost_value": 1000},
    ])
    service.cached[("demo", "rules")] = service.current[("demo", "rules")]
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=manifest_of(version=V1),
                                 history_reader=history_of((V1, POP_V1)))
    assert result.data["verdict"] == "consistent", result.summary


def test_served_vs_published_flags_a_stale_pipeline_when_the_manifest_is_old(target, client, manifest_of, history_of):
    """Served = manifest, but the manifest was last updated days ago → warn 'pipeline stale'."""
    old = manifest_of(version=V1, updated_at="2020-01-01T00:00:00Z")
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=old,
                                 history_reader=history_of((V1, POP_V1)))
    assert result.status == "warn" and result.data["verdict"] == "pipeline_stale"
    assert result.summary.startswith("pipeline stale")


def test_served_vs_published_warns_when_no_published_version_explains_the_list(service, target, client, manifest_of,
                                                                                 history_of):
    """A served list that matches nothing in the registry → warn 'unexplained'."""
    unrelated = [{"item_id": f"sku-09{n}", "count": 10 - n} for n in range(5)]
    result = check_served_vs_published(target, "demo", "home", client=client,
                                 manifest_reader=manifest_of(version=V2, items=unrelated),
                                 history_reader=history_of((V2, unrelated)))
    assert result.status == "warn" and result.data["verdict"] == "unexplained"


def test_served_vs_published_cannot_compare_without_a_usable_manifest(target, client, manifest_of, history_of):
    """A missing manifest → fail 'cannot compare' pointing at the probe."""
    result = check_served_vs_published(target, "demo", "home", client=client, manifest_reader=manifest_of("missing"),
                                 history_reader=history_of())
    assert result.status == "fail" and result.data["verdict"] == "manifest_unusable"


def test_explain_requires_artifact_order_and_proportional_scores():
    """Scores w×count in artifact order explain; a reordered or foreign list does not."""
    served = [(i["item_id"], 2.0 * i["count"]) for i in POP_V1]
    assert explain(served, POP_V1).explains and explain(served, POP_V1).skipped == 0
    assert not explain(list(reversed(served)), POP_V1).explains
    assert not explain(served, POP_V2).explains


def test_active_blocks_respect_surface_enabled_and_validity_window():
    """Only enabled block rules for this surface and in their window count."""
    rules = [
        {"action": "block", "item_ids": ["a"]},
        {"action": "block", "item_ids": ["b"], "surface": "search"},
        {"action": "block", "item_ids": ["c"], "enabled": False},
        {"action": "block", "item_ids": ["d"], "valid_until": "2000-01-01T00:00:00Z"},
        {"action": "pin", "item_ids": ["e"]},
    ]
    assert [r["item_ids"] for r in active_blocks(rules, "home")] == [["a"]]


def test_probe_results_never_contain_the_api_key(service, target, client, manifest_of):
    """The key stays out of every result, firing or quiet."""
    ok = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    service.recommend_problem = (500, "RECSYS_INTERNAL", "store down")
    bad = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    for result in (ok, bad):
        assert target.api_key not in repr(result) and target.api_key not in str(result.to_dict())


def test_probe_of_a_service_answering_an_html_page_is_a_bad_answer_not_an_empty_result(target, manifest_of):
    """A 200 HTML page (wrong RECSYS_BASE_URL, a proxy) is not blamed on the manifest or the cache."""
    from recsys_checks.reach.service import ServiceClient

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>", headers={"Content-Type": "text/html"})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        result = check_recommendations(target, "demo", "home", client=c, manifest_reader=manifest_of())
    assert result.status == "fail" and result.data["cause"] == "bad_answer"
    assert "RECSYS_BASE_URL" in result.summary


def test_an_empty_answer_with_unreadable_rules_says_so_instead_of_blaming_the_cache(service, target, manifest_of):
    """Without an API key the rules cannot be read: the probe says that, not cache_stale."""
    import dataclasses

    from recsys_checks.reach.service import ServiceClient

    service.served["home"] = []
    keyless = dataclasses.replace(target, api_key=None)
    with ServiceClient(keyless, transport=httpx.MockTransport(service.handler)) as c:
        result = check_recommendations(keyless, "demo", "home", client=c, manifest_reader=manifest_of())
    assert result.data["cause"] == "rules_unreadable" and "RECSYS_API_KEY" in result.summary
    assert "cache" not in result.summary


def test_a_500_with_a_failing_admin_database_names_the_database_not_the_store(service, target, client, manifest_of):
    """The not-ready fault: recommend fails and the detailed health names the admin database."""
    service.recommend_problem = (500, "RECSYS_INTERNAL", "database is locked")
    service.checks["admin_db"] = {"status": "fail", "detail": "database is locked"}
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of())
    assert result.data["cause"] == "dependency_failed" and "admin_db" in result.summary
    assert "artifact store" not in result.summary


# --- the short-answer invariant -----------------------------------------------------------------------------------

POP_8 = [*POP_V1, {"item_id": "sku-0006", "count": 9}, {"item_id": "sku-0007", "count": 8},
         {"item_id": "sku-0008", "count": 7}]


def test_fewer_items_than_the_artifact_allows_is_a_short_answer(target, client, manifest_of):
    """The service serves 5 of an 8-item artifact with nothing blocked: a finding no empty-answer cause covers."""
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of(items=POP_8))
    assert result.status == "fail" and result.data["cause"] == "short_answer" and result.unread is None
    assert "5 items served where 8" in result.summary


def test_items_hidden_by_rules_explain_a_short_answer(service, target, client, manifest_of):
    """Three of the eight are blocked: the five served are all the surface may serve."""
    service.seed("rules", [{"action": "block", "target_type": "item", "item_ids": ["sku-0006", "sku-0007", "sku-0008"]}])
    service.cached[("demo", "rules")] = service.current[("demo", "rules")]
    result = check_recommendations(target, "demo", "home", client=client, manifest_reader=manifest_of(items=POP_8))
    assert result.status == "ok", result.summary


def test_a_short_answer_without_the_key_is_unread_not_healthy(service, target, manifest_of):
    """Without RECSYS_API_KEY the rules cannot rule the gap out: the probe says so instead of passing."""
    keyless = dataclasses.replace(target, api_key=None)
    with ServiceClient(keyless, transport=httpx.MockTransport(service.handler)) as c:
        result = check_recommendations(keyless, "demo", "home", client=c, manifest_reader=manifest_of(items=POP_8))
    assert result.status == "fail" and result.data["cause"] == "rules_unreadable"
    assert result.unread and "RECSYS_API_KEY" in result.unread


def test_items_the_rules_hide_are_not_taken_for_another_version(service, target, client, manifest_of, history_of):
    """Two of v1's items blocked: an older artifact without them must not explain the list better (no cache_stale)."""
    service.seed("rules", [{"action": "block", "target_type": "item", "item_ids": ["sku-0002", "sku-0003"]}])
    service.cached[("demo", "rules")] = service.current[("demo", "rules")]
    older = [i for i in POP_V1 if i["item_id"] not in ("sku-0002", "sku-0003")]
    readers = {"manifest_reader": manifest_of(version=V1), "history_reader": history_of((V1, POP_V1), ("a" * 64, older))}
    result = check_served_vs_published(target, "demo", "home", client=client, **readers)
    assert result.status == "ok" and result.data["verdict"] == "consistent", result.summary
    assert result.data["hidden_by_rules"] == 2
    keyless = dataclasses.replace(target, api_key=None)  # without the rules the same list looks like the older one
    with ServiceClient(keyless, transport=httpx.MockTransport(service.handler)) as c:
        blind = check_served_vs_published(keyless, "demo", "home", client=c, **readers)
    assert blind.data["verdict"] == "cache_stale"
