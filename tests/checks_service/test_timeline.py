"""timeline: publishes, rollbacks, config/rules changes and cache invalidations, merged chronologically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from recsys_checks.errors import Unreachable
from recsys_checks.timeline import check_timeline
from recsys_checks.version_records import VersionRecord

from .conftest import CONFIG_SEED, V1, V2, version_of

NOW = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)


def record(version: str, day: int, built: str) -> VersionRecord:
    return VersionRecord(tenant="demo", surface="home", segment="default", kind="popularity", version=version,
                         uri=f"file:///reg/objectstore/demo/home/popularity/{version}.json",
                         window_start=f"2026-01-{day - 1:02d}T00:00:00Z", window_end=f"2026-01-{day:02d}T00:00:00Z",
                         built_at=built)


def registry(fail: bool = False) -> dict[str, Any]:
    """The readers of a registry with two publishes (one from staging, zero BuiltAt) and one manifest rollback."""

    def history(target, tenant, surface, kind=None):
        if fail:
            raise Unreachable("cannot reach s3://recsys-artifacts: connection refused")
        return [record(V2, 11, "2026-01-11T01:30:00.123456789Z"), record(V1, 10, "0001-01-01T00:00:00Z")]

    def read_audit(target, tenant, surface):
        if fail:
            raise Unreachable("cannot reach s3://recsys-artifacts: connection refused")
        if surface == "_tenant":
            return []
        return [{"action": "manifest.rollback", "who": "oncall-ann", "when": "2026-01-11T09:00:00Z",
                 "why": "empty recs", "runbook": "rollback-manifest",
                 "changes": [{"kind": "popularity", "before_version": V2, "after_version": V1}]},
                {"uri": "file:///reg/audit/x.json", "error": "unreadable audit record: bad json"}]

    return {"read_history": history, "read_audit": read_audit}


def test_all_sources_are_merged_oldest_first(service, target, client):
    """Publishes, the rollback, config changes and cache invalidations appear in time order with versions."""
    service.clock = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)
    service.write("demo", "config", {**CONFIG_SEED, "algo": "x"}, actor_sub="alice", actor_type="user",
                  request_id=None)
    client.invalidate("demo", ["config"])
    result = check_timeline(target, "demo", "home", now=NOW, client=client, **registry())
    kinds = [e["kind"] for e in result.data["events"]]
    assert kinds == ["publish", "config", "rules", "publish", "rollback", "config", "cache"]
    whens = [e["when"] for e in result.data["events"]]
    assert whens == sorted(whens)
    rollback = result.data["events"][4]
    assert rollback["who"] == "oncall-ann" and rollback["before"] == f"popularity {V2[:12]}"
    assert rollback["after"] == f"popularity {V1[:12]}" and "rollback-manifest" in rollback["why"]
    change = result.data["events"][5]
    assert change["who"] == "alice (user)" and change["before"] == version_of(CONFIG_SEED)[:12]
    staged = result.data["events"][0]
    assert staged["who"] == "pipeline (from staging)" and staged["when"] == "2026-01-10T00:00:00Z"
    assert result.data["events"][3]["before"] == V1[:12] and result.data["events"][3]["after"] == V2[:12]
    # one unreadable audit object makes it a warning, the rest is still shown
    assert result.status == "warn" and "unreadable" in result.summary


def test_since_limits_the_window(service, target, client):
    """Events older than now - since are left out."""
    result = check_timeline(target, "demo", "home", since=timedelta(hours=5), now=NOW, client=client, **registry())
    assert result.data["events"] == []


def test_an_unavailable_service_warns_and_still_shows_the_registry(service, target, client):
    """Service down → warn naming it, registry events present."""
    service.down = httpx.ConnectError("refused")
    result = check_timeline(target, "demo", "home", now=NOW, client=client, **registry())
    assert result.status == "warn" and "service audit unavailable" in result.summary
    assert {e["kind"] for e in result.data["events"]} == {"publish", "rollback"}


def test_an_unavailable_registry_warns_and_still_shows_the_service(service, target, client):
    """Registry down → warn, service audit events present."""
    result = check_timeline(target, "demo", "home", now=NOW, client=client, **registry(fail=True))
    assert result.status == "warn" and "registry unavailable" in result.summary
    assert {e["kind"] for e in result.data["events"]} == {"config", "rules"}


def test_nothing_readable_fails(service, target, client):
    """Every source down → fail."""
    service.down = httpx.ConnectError("refused")
    result = check_timeline(target, "demo", "home", now=NOW, client=client, **registry(fail=True))
    assert result.status == "fail"


def test_cache_invalidations_of_other_surfaces_are_left_out(service, target, client):
    """With a surface, invalidations scoped to another surface are not shown; tenant-wide ones are."""
    client.invalidate("demo", ["popularity"], "search")
    client.invalidate("demo", ["popularity"])
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=lambda *a: [],
                            read_audit=lambda *a: [])
    caches = [e for e in result.data["events"] if e["kind"] == "cache"]
    assert len(caches) == 1 and caches[0]["surface"] is None
    assert result.status == "ok"


def test_without_an_api_key_the_service_audit_is_reported_missing(service, client):
    """No RECSYS_API_KEY → warn naming it, registry still shown."""
    from recsys_checks.config import Target

    target = Target(base_url="http://recsys.test:8080")
    result = check_timeline(target, "demo", "home", now=NOW, **registry())
    assert result.status == "warn" and "RECSYS_API_KEY" in result.summary


def test_our_audit_record_and_the_services_entry_of_one_change_show_as_one_row_with_the_reason(
    service, target, client
):
    """A revert audited by us (why, runbook) and by the service (same request id) is one timeline row."""
    service.clock = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)
    service.write("demo", "config", {**CONFIG_SEED, "algo": "x"}, actor_sub="api-key:1234abcd", actor_type="api_key",
                  request_id="req-42")

    def read_audit(target, tenant, surface):
        if surface != "_tenant":
            return []
        return [{"action": "config.revert", "who": "oncall-bo", "when": "2026-01-11T10:00:01Z", "why": "bad weights",
                 "runbook": "rollback-config-rules", "before": "a" * 64, "after": "b" * 64,
                 "service_request_id": "req-42"}]

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=lambda *a: [],
                            read_audit=read_audit)
    rows = [e for e in result.data["events"] if e["when"] >= "2026-01-11T10:00:00Z" and e["kind"] == "config"]
    assert len(rows) == 1
    assert rows[0]["source"] == "service audit" and rows[0]["who"] == "oncall-bo"
    assert "bad weights" in rows[0]["why"]


def test_a_hold_set_and_cleared_shows_on_the_timeline(service, target, client):
    """Our hold.set and hold.clear records appear as kind hold, before/after held and not held, with the reason."""
    holds = [
        {"action": "hold.set", "who": "alice", "when": "2026-01-11T09:00:00Z", "why": "SRM in exp-1",
         "changes": [{"what": "hold of demo/home", "before": "not held", "after": "held"}]},
        {"action": "hold.clear", "who": "bob", "when": "2026-01-11T11:00:00Z", "why": "fixed",
         "changes": [{"what": "hold of demo/home", "before": "held", "after": "not held"}]},
    ]
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=lambda *a: [],
                            read_audit=lambda target, tenant, scope: holds if scope == "home" else [])
    rows = [e for e in result.data["events"] if e["kind"] == "hold"]
    assert [(r["who"], r["before"], r["after"], r["why"]) for r in rows] == [
        ("alice", "not held", "held", "SRM in exp-1"), ("bob", "held", "not held", "fixed")]


def test_a_rollback_in_the_same_second_as_the_publish_it_undid_comes_after_it(target, client):
    """Audit records carry microseconds, as publishes do: within one second the timeline keeps their real order."""
    from recsys_checks.timefmt import format_micro_z

    def history(target, tenant, surface, kind=None):
        return [record(V2, 11, "2026-01-11T09:00:00.600000000Z")]

    def read_audit(target, tenant, surface):
        if surface == "_tenant":
            return []
        return [{"action": "manifest.rollback", "who": "oncall-ann", "why": "bad publish",
                 "when": format_micro_z(datetime(2026, 1, 11, 9, 0, 0, 900_000, tzinfo=UTC)),
                 "changes": [{"kind": "popularity", "before_version": V2, "after_version": V1}]}]

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history,
                            read_audit=read_audit)
    assert [e["kind"] for e in result.data["events"] if e["kind"] in ("publish", "rollback")] == ["publish", "rollback"]
