"""configrules: canonical versions, show, history from the audit log, and the revert safety contract."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from recsys_checks.core.errors import BadInput, Conflict, Unreachable
from recsys_checks.judge.serving.documents import (
    canonical_jsonb,
    check_document,
    check_document_history,
    diff,
    doc_version,
)
from recsys_checks.levers.revert import apply_revert, plan_revert
from recsys_checks.reach.service import ServiceClient

from .conftest import API_KEY, BAD_CONFIG, CONFIG_SEED, version_of


def test_canonical_jsonb_sorts_keys_by_length_then_bytes_with_spaced_separators():
    """Shorter keys first, then bytewise; ", " and ": " separators; non-ASCII kept."""
    doc = {"bb": 1, "a": [1, {"zz": "é", "y": None}], "c": True}
    assert canonical_jsonb(doc) == '{"a": [1, {"y": null, "zz": "é"}], "c": true, "bb": 1}'
    assert doc_version(doc) == hashlib.sha256(canonical_jsonb(doc).encode()).hexdigest()


def test_doc_version_matches_the_services_etag(service):
    """The version recomputed here equals the one the service reports."""
    assert doc_version(CONFIG_SEED) == version_of(CONFIG_SEED) == service.current[("demo", "config")]
    assert doc_version({"é": 1, "ab": 2}) == version_of({"é": 1, "ab": 2})


def test_show_reports_the_current_version_as_state(service, target, client):
    """show → ok, state = the version."""
    result = check_document(target, "demo", "config", client=client)
    assert result.status == "ok" and result.state == service.current[("demo", "config")]
    assert result.data["document"] == CONFIG_SEED


def test_show_warns_when_the_etag_is_not_the_canonical_hash(service, target, client):
    """A service whose versions are not the canonical hash is flagged (revert by version would misfire)."""
    key = ("demo", "config")
    odd = "f" * 64
    service.docs[key][odd] = service.docs[key][service.current[key]]
    service.current[key] = odd
    result = check_document(target, "demo", "config", client=client)
    assert result.status == "warn" and result.data["computed_version"] == version_of(CONFIG_SEED)


def test_show_of_an_unknown_tenant_fails(target, client):
    """404 RECSYS_TENANT_NOT_FOUND → fail result with the problem."""
    result = check_document(target, "nobody", "rules", client=client)
    assert result.status == "fail" and result.data["problem"]["code"] == "RECSYS_TENANT_NOT_FOUND"


def test_history_lists_who_when_and_before_after_versions(bad_config, target, client):
    """Rows come from the audit log, newest first, versions recomputed from the states."""
    result = check_document_history(target, "demo", "config", client=client)
    assert result.status == "ok"
    newest, seed = result.data["changes"]
    assert newest["who"] == "alice" and newest["before"] == version_of(CONFIG_SEED)[:12]
    assert newest["after"] == version_of(BAD_CONFIG)[:12]
    assert seed["before"] is None and seed["who"] == "recsys-stack"


def test_history_ignores_cache_invalidations_and_other_kinds(bad_config, target, client):
    """Only config.update entries are config history."""
    client.invalidate("demo", ["config"])
    assert len(check_document_history(target, "demo", "config", client=client).data["changes"]) == 2
    assert len(check_document_history(target, "demo", "rules", client=client).data["changes"]) == 1


def test_plan_previous_targets_the_version_before_the_current_one(bad_config, target, client):
    """--previous → the before_state of the entry that produced the current version, with a field diff."""
    plan = plan_revert(target, "demo", "config", previous=True, reason="weights zeroed", client=client)
    assert plan.observed == version_of(BAD_CONFIG)
    assert plan.changes == [{"what": "config version of demo", "before": version_of(BAD_CONFIG),
                             "after": version_of(CONFIG_SEED)}]
    assert plan.details["document"] == CONFIG_SEED
    assert {"path": "weights.pop", "before": 0.0, "after": 1.0} in plan.details["diff"]


def test_plan_to_accepts_a_unique_prefix(bad_config, target, client):
    """--to with 12 hex digits (as history shows) resolves."""
    plan = plan_revert(target, "demo", "config", to=version_of(CONFIG_SEED)[:12], client=client)
    assert plan.changes[0]["after"] == version_of(CONFIG_SEED)


def test_plan_to_an_unknown_version_says_how_to_list_versions(bad_config, target, client):
    """Unknown version → BadInput naming the history command."""
    with pytest.raises(BadInput, match="recsys-checks config history --tenant demo"):
        plan_revert(target, "demo", "config", to="deadbeef" * 8, client=client)


def test_plan_needs_exactly_one_of_to_and_previous(target, client):
    """Neither or both → BadInput."""
    with pytest.raises(BadInput):
        plan_revert(target, "demo", "config", client=client)
    with pytest.raises(BadInput):
        plan_revert(target, "demo", "config", to="abc", previous=True, client=client)


def test_plan_previous_of_the_first_version_is_refused(target, client):
    """The seed version has no predecessor."""
    with pytest.raises(BadInput, match="oldest version"):
        plan_revert(target, "demo", "config", previous=True, client=client)


def test_dry_run_changes_nothing(bad_config, target, client):
    """Without execute: status planned, service state byte-identical, no mutating request."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    before = bad_config.snapshot()
    result = apply_revert(target, plan, client=client)
    assert result.status == "planned" and "dry-run" in result.summary
    assert bad_config.snapshot() == before and bad_config.mutating_requests() == []


def test_execute_reverts_with_if_match_invalidates_and_verifies(bad_config, target, client):
    """Execute: PUT with bare If-Match, config cache invalidated, meta.config_version verified, audited by service."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    result = apply_revert(target, plan, execute=True, client=client)
    assert result.status == "applied", result.summary
    assert bad_config.current[("demo", "config")] == version_of(CONFIG_SEED)
    put = next(r for r in bad_config.requests if r.method == "PUT")
    assert put.headers["If-Match"] == version_of(BAD_CONFIG)
    assert json.loads(put.content) == CONFIG_SEED  # the raw document, as the suite takes it
    assert result.verification is not None and result.verification.status == "ok"
    actions = [e["action"] for e in bad_config.audit_log]
    assert actions[-2:] == ["config.update", "cache.invalidate"]
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["action"] == "config.revert" and record["service_request_id"] == put.headers["X-Request-Id"]
    assert record["before"] == version_of(BAD_CONFIG) and record["after"] == version_of(CONFIG_SEED)
    assert record["who"] and record["plan_hash"] == plan.plan_hash


def test_previous_twice_steps_back_instead_of_restoring_the_bad_version(bad_config, target, client):
    """After reverting a bad change, --previous again goes further back, never to the version just replaced."""
    first = plan_revert(target, "demo", "config", previous=True, client=client)
    apply_revert(target, first, execute=True, client=client)
    assert bad_config.current[("demo", "config")] == version_of(CONFIG_SEED)
    with pytest.raises(BadInput, match="oldest version"):
        plan_revert(target, "demo", "config", previous=True, client=client)


def test_execute_without_invalidation_would_leave_the_old_version_served(bad_config, target, client):
    """The verification detector fires when the served version is not the reverted one."""
    from recsys_checks.levers.revert import verify_version

    bad_config.write("demo", "config", CONFIG_SEED, actor_sub="bob", actor_type="user", request_id=None)
    check = verify_version(client, target, "demo", "config", version_of(CONFIG_SEED), "home")
    assert check.status == "fail" and "still serves" in check.summary


def test_reapplying_the_same_plan_is_a_noop(bad_config, target, client):
    """Second execute: already at the target → noop, no PUT."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    apply_revert(target, plan, execute=True, client=client)
    puts = len([r for r in bad_config.requests if r.method == "PUT"])
    again = apply_revert(target, plan, execute=True, client=client)
    assert again.status == "noop" and again.verification.status == "ok"
    assert len([r for r in bad_config.requests if r.method == "PUT"]) == puts


def test_a_change_since_the_plan_is_a_conflict_and_changes_nothing(bad_config, target, client):
    """Someone else changed the config after the plan → Conflict (exit 3), no PUT."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    bad_config.write("demo", "config", {**BAD_CONFIG, "algo": "other"}, actor_sub="carol", actor_type="user",
                     request_id=None)
    before = bad_config.snapshot()
    with pytest.raises(Conflict) as info:
        apply_revert(target, plan, execute=True, client=client)
    assert info.value.exit_code == 3
    assert bad_config.snapshot() == before and not any(r.method == "PUT" for r in bad_config.requests)


def test_a_race_answered_409_by_the_service_is_a_conflict(bad_config, target, client):
    """The document changes between our read and our PUT: the service's 409 becomes Conflict."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)

    def race() -> None:
        bad_config.before_put = None
        bad_config.write("demo", "config", {**BAD_CONFIG, "algo": "race"}, actor_sub="dave", actor_type="user",
                         request_id=None)

    bad_config.before_put = race
    with pytest.raises(Conflict, match="409"):
        apply_revert(target, plan, execute=True, client=client)
    assert bad_config.doc("config")["algo"] == "race"


def test_rules_revert_round_trip(service, target, client):
    """Rules work the same way: a bad block rule is reverted to the empty list."""
    bad = [{"action": "block", "target_type": "category", "target_key": "books"}]
    service.write("demo", "rules", bad, actor_sub="erin", actor_type="user", request_id=None)
    plan = plan_revert(target, "demo", "rules", previous=True, client=client)
    assert plan.details["document"] == []
    result = apply_revert(target, plan, execute=True, client=client)
    assert result.status == "applied" and service.doc("rules") == []
    assert result.verification.data["served"] == version_of([])


def test_results_and_plans_never_contain_the_api_key(bad_config, target, client):
    """Key absent from show/history results, plan and action result (JSON and repr)."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    outputs = [check_document(target, "demo", "config", client=client),
               check_document_history(target, "demo", "config", client=client),
               plan, apply_revert(target, plan, execute=True, client=client)]
    for out in outputs:
        assert API_KEY not in json.dumps(out.to_dict(), default=str) and API_KEY not in repr(out)


def test_history_of_an_unreachable_service_is_a_configuration_error(service, target, client):
    """Connection refused → Unreachable (exit 2): there was nothing to judge, so it is not a failed check."""
    service.down = httpx.ConnectError("refused")
    with pytest.raises(Unreachable, match="did not answer"):
        check_document_history(target, "demo", "config", client=client)


def test_diff_lists_changed_added_and_removed_paths():
    """Leaf paths with before/after."""
    rows = diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": [1]})
    assert rows == [{"path": "b.c", "before": 2, "after": 3}, {"path": "d[0]", "before": None, "after": 1}]


def test_a_failed_cache_invalidation_after_the_revert_is_reported_and_still_audited(bad_config, target, client):
    """The PUT went through but the invalidation answers 500: the revert is reported as done, the verification
    fails (exit 1), the summary says how to invalidate, and our audit record is written all the same."""
    admin = bad_config.admin

    def failing_invalidate(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cache/invalidate"):
            return httpx.Response(500, json={"code": "RECSYS_INTERNAL", "detail": "cache backend down"})
        return admin(request)

    bad_config.admin = failing_invalidate
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    result = apply_revert(target, plan, execute=True, client=client)
    assert result.status == "applied" and bad_config.current[("demo", "config")] == version_of(CONFIG_SEED)
    assert "NOT invalidated" in result.summary and "cache invalidate --tenant demo --targets config" in result.summary
    assert result.verification is not None and result.verification.status == "fail"
    assert result.audit is not None
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["action"] == "config.revert" and record["after"] == version_of(CONFIG_SEED)


def test_a_non_ascii_actor_is_sent_as_utf8_and_a_control_character_is_refused(bad_config, target, client):
    """RECSYS_ACTOR='José Núñez' works on an action; an actor with a newline is a clear bad input, nothing sent."""
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    with ServiceClient(target, transport=httpx.MockTransport(bad_config.handler), actor="José Núñez") as named:
        result = apply_revert(target, plan, execute=True, client=named, actor="José Núñez")
    assert result.status == "applied", result.summary
    put = next(r for r in bad_config.requests if r.method == "PUT")
    assert put.headers.raw and ("José Núñez".encode() in [v for k, v in put.headers.raw if k.lower() == b"x-actor"])
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["who"] == "José Núñez"
    before = len(bad_config.requests)
    evil = ServiceClient(target, transport=httpx.MockTransport(bad_config.handler), actor="eve\r\nX-Evil: 1")
    with evil, pytest.raises(BadInput, match="control character"):
        apply_revert(target, plan_revert(target, "demo", "config", previous=True, client=evil), execute=True,
                     client=evil, actor="eve\r\nX-Evil: 1")
    assert all(r.method == "GET" for r in bad_config.requests[before:])


def test_a_cyrillic_tenant_is_asked_for_not_a_crash(bad_config, target, client):
    """A tenant name with a Cyrillic letter reaches the service (which does not know it): a fail result."""
    result = check_document(target, "dеmo", "config", client=client)  # the 'е' is Cyrillic
    assert result.status == "fail" and "RECSYS_TENANT_NOT_FOUND" in result.summary


def test_a_revert_with_a_stale_plan_id_or_without_confirmation_sends_nothing(bad_config, target, client):
    """The same guard as the rollback: a plan id that is not the fresh plan's, or a protected deployment without
    --confirm, stops before any request that changes something."""
    import dataclasses

    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    with pytest.raises(Conflict):
        apply_revert(target, plan, execute=True, client=client, plan_id="f" * 12)
    protected = dataclasses.replace(target, deployment="prod", protected=True)
    with pytest.raises(BadInput, match="protected"):
        apply_revert(protected, plan, execute=True, client=client)
    assert bad_config.mutating_requests() == []


def test_a_revert_without_an_etag_from_the_service_is_refused(bad_config, target):
    """A service (or proxy) that gives no ETag and no version: the revert refuses instead of writing without
    If-Match (comparing "" with "")."""
    def no_version(request: httpx.Request) -> httpx.Response:
        response = bad_config.handler(request)
        if request.method == "GET" and request.url.path.endswith("/config"):
            body = json.loads(response.content)
            body.pop("config_version", None)
            return httpx.Response(response.status_code, json=body)
        return response

    with ServiceClient(target, transport=httpx.MockTransport(no_version)) as bare:
        plan = plan_revert(target, "demo", "config", to=version_of(CONFIG_SEED), client=bare)
        with pytest.raises(BadInput, match="ETag"):
            apply_revert(target, plan, execute=True, client=bare)
    assert bad_config.mutating_requests() == []


def test_a_revert_answered_503_once_is_written_once_and_says_two_tries(bad_config, target):
    """The service answers 503 to the first PUT (a restart, a proxy): the conditional write is sent again within
    the deadline, applied once, and the result says it took two tries."""
    import random

    from recsys_checks.reach.service import RetryPolicy

    failed: list[str] = []
    updates = [e["action"] for e in bad_config.audit_log].count("config.update")

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and not failed:
            failed.append(request.headers["X-Request-Id"])
            return httpx.Response(503, json={"status": 503, "title": "Service Unavailable", "detail": "restarting"})
        return bad_config.handler(request)

    with ServiceClient(target, transport=httpx.MockTransport(flaky)) as client:
        client.retry = RetryPolicy(base=0.01, cap=0.05, rng=random.Random(1))
        plan = plan_revert(target, "demo", "config", previous=True, client=client)
        result = apply_revert(target, plan, execute=True, client=client)
    assert result.status == "applied" and result.attempts == 2, result.summary
    assert "in 2 tries" in result.summary and result.to_dict()["attempts"] == 2
    assert bad_config.current[("demo", "config")] == version_of(CONFIG_SEED)
    assert [e["action"] for e in bad_config.audit_log].count("config.update") == updates + 1  # applied once
