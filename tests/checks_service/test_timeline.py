"""timeline: publishes, rollbacks, config/rules changes and cache invalidations, merged chronologically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from recsys_checks.core.errors import Unreachable
from recsys_checks.judge.registry.version_records import VersionRecord
from recsys_checks.judge.timeline import check_timeline
from recsys_checks.reach.store import file_path

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
    from recsys_checks.reach.settings import Target

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
    from recsys_checks.core.timefmt import format_micro_z

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


# --- the manifest's own updated_at ---------------------------------------------------------------------------------

def manifest_naming(updated_at: str, **versions: str):
    """A manifest reader: the manifest of demo/home names ``versions`` (kind -> version) under ``updated_at``."""
    from recsys_checks.judge.registry.manifest import Manifest

    current = {kind: f"file:///reg/objectstore/demo/home/{kind}/{v}.json" for kind, v in versions.items()}
    return lambda target, tenant, surface: Manifest(1, tenant, surface, current, updated_at)


def history_of_two(target, tenant, surface, kind=None):
    """V1 built 2026-01-10 01:30, V2 built 2026-01-11 01:30 (newest first, as the registry lists them)."""
    return [record(V2, 11, "2026-01-11T01:30:00.123456789Z"), record(V1, 10, "2026-01-10T01:30:00.5Z")]


def no_audit(target, tenant, scope):
    return []


def manifest_rows(result) -> list[dict[str, Any]]:
    return [e for e in result.data["events"] if e["kind"] == "manifest"]


def test_a_manifest_repointed_to_an_old_version_without_a_record_is_a_row(target, client):
    """Firing: the manifest names V1 (superseded by V2) under an updated_at no record explains, as a re-run of an
    old day leaves it: one row at updated_at naming the kind, the version, its window and that no record was
    written."""
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit, read_manifest=manifest_naming("2026-01-12T11:00:00Z", popularity=V1))
    rows = manifest_rows(result)
    assert len(rows) == 1, result.data["events"]
    row = rows[0]
    assert row["when"] == "2026-01-12T11:00:00Z" and row["surface"] == "home"
    assert row["what"] == "manifest repointed to an old version" and row["source"] == "registry manifest"
    assert row["after"] == f"popularity {V1[:12]}" and row["before"] is None and row["who"] is None
    assert "2026-01-09T00:00:00Z .. 2026-01-10T00:00:00Z" in row["why"] and "1 newer version recorded" in row["why"]
    assert row["why"].startswith("no version record was written (e.g. a re-run of an old day)")
    assert result.data["events"][-1] is row  # the newest event
    assert result.status == "ok"


def test_only_the_kinds_named_at_old_versions_are_listed(target, client):
    """A manifest naming cooc at its newest and popularity at an old version lists popularity only."""
    def history(target, tenant, surface, kind=None):
        cooc = VersionRecord(tenant="demo", surface="home", segment="default", kind="cooc", version=V2,
                             uri=f"file:///reg/objectstore/demo/home/cooc/{V2}.json",
                             window_start="2026-01-10T00:00:00Z", window_end="2026-01-11T00:00:00Z",
                             built_at="2026-01-11T01:30:00Z")
        return [cooc, *history_of_two(target, tenant, surface)]

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history,
                            read_audit=no_audit,
                            read_manifest=manifest_naming("2026-01-12T11:00:00Z", popularity=V1, cooc=V2))
    [row] = manifest_rows(result)
    assert row["after"] == f"popularity {V1[:12]}" and "cooc" not in row["why"]


def test_a_normal_publish_history_shows_no_manifest_row(target, client):
    """Quiet: the manifest names the newest versions under an updated_at seconds after their build (the publish's
    own swap): no extra row, only the publishes."""
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit, read_manifest=manifest_naming("2026-01-11T01:30:40Z", popularity=V2))
    assert manifest_rows(result) == []
    assert [e["kind"] for e in result.data["events"] if e["source"].startswith("registry")] == ["publish", "publish"]


def test_a_swap_whose_second_is_before_the_build_still_counts_as_the_publish(target, client):
    """Quiet: updated_at has whole seconds, so a swap in the same second as the build reads as a little before it."""
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit, read_manifest=manifest_naming("2026-01-11T01:30:00Z", popularity=V2))
    assert manifest_rows(result) == []


def test_a_rollback_audited_by_us_is_not_shown_twice(target, client):
    """Quiet: our manifest.rollback record at updated_at (to the second) explains the write: only the rollback row."""
    def read_audit(target, tenant, scope):
        if scope != "home":
            return []
        return [{"action": "manifest.rollback", "who": "oncall-ann", "when": "2026-01-12T09:00:00.400000Z",
                 "why": "bad publish", "changes": [{"kind": "popularity", "before_version": V2, "after_version": V1}]}]

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=read_audit, read_manifest=manifest_naming("2026-01-12T09:00:00Z", popularity=V1))
    assert manifest_rows(result) == []
    assert [e["kind"] for e in result.data["events"]].count("rollback") == 1


def test_a_rollback_minutes_before_the_write_does_not_explain_it(target, client):
    """Firing: a rollback recorded ten minutes before updated_at is another write; this one is still shown."""
    def read_audit(target, tenant, scope):
        return [{"action": "manifest.rollback", "who": "oncall-ann", "when": "2026-01-12T08:50:00Z", "why": "x",
                 "changes": []}] if scope == "home" else []

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=read_audit, read_manifest=manifest_naming("2026-01-12T09:00:00Z", popularity=V1))
    assert len(manifest_rows(result)) == 1


def test_a_rewrite_naming_the_newest_versions_is_a_manifest_updated_row(target, client):
    """A write hours after the newest build, naming it (a re-run of the newest day): "manifest updated"."""
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit, read_manifest=manifest_naming("2026-01-12T10:00:00Z", popularity=V2))
    [row] = manifest_rows(result)
    assert row["what"] == "manifest updated" and row["after"] == f"popularity {V2[:12]}"
    assert "no version record was written" in row["why"]


def test_a_version_without_a_record_is_named(target, client):
    """A manifest naming a version the registry has no record of says so."""
    other = "c3" * 32
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit,
                            read_manifest=manifest_naming("2026-01-12T10:00:00Z", popularity=other))
    [row] = manifest_rows(result)
    assert f"popularity {other[:12]} has no version record" in row["why"]


def test_an_older_manifest_write_is_outside_the_window(target, client):
    """updated_at before now - since: no row."""
    result = check_timeline(target, "demo", "home", since=timedelta(hours=1), now=NOW, client=client,
                            read_history=history_of_two, read_audit=no_audit,
                            read_manifest=manifest_naming("2026-01-12T10:00:00Z", popularity=V1))
    assert manifest_rows(result) == []


def test_without_our_audit_records_a_repoint_says_a_rollback_is_not_ruled_out(target, client):
    """Our audit records unreadable: the write is shown, saying that it may be a rollback of ours."""
    def read_audit(target, tenant, scope):
        raise Unreachable("cannot reach the audit prefix")

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=read_audit, read_manifest=manifest_naming("2026-01-12T09:00:00Z", popularity=V1))
    [row] = manifest_rows(result)
    assert "rollback by recsys-checks is not ruled out" in row["why"]
    assert result.status == "warn"


def test_an_unreadable_manifest_makes_the_timeline_a_warning(target, client):
    """A manifest that cannot be parsed: warn naming it, the publishes still shown."""
    from recsys_checks.core.errors import BadInput

    def broken(target, tenant, surface):
        raise BadInput("manifest for demo/home is invalid: not JSON")

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit, read_manifest=broken)
    assert result.status == "warn" and "1 unreadable manifest(s)" in result.summary
    assert any("not JSON" in p for p in result.data["problems"])
    assert [e["kind"] for e in result.data["events"]].count("publish") == 2


def test_the_manifest_is_read_once_per_surface(target, client):
    """One manifest read per surface, however many kinds and records it has."""
    calls = []
    reader = manifest_naming("2026-01-12T10:00:00Z", popularity=V1)

    def counting(target, tenant, surface):
        calls.append(surface)
        return reader(target, tenant, surface)

    check_timeline(target, "demo", now=NOW, client=client, read_history=history_of_two, read_audit=no_audit,
                   read_manifest=counting, surfaces=["home", "search"])
    assert sorted(calls) == ["home", "search"]


def test_the_default_reader_reads_the_manifest_from_the_registry(target, client):
    """Without injected readers: a manifest file in the target's registry naming an old version gives the row."""
    from recsys_checks.judge.registry.manifest import Manifest, manifest_bytes

    path = file_path(target.manifest_uri("demo", "home"))
    path.parent.mkdir(parents=True)
    uri = f"file:///reg/objectstore/demo/home/popularity/{V1}.json"
    path.write_bytes(manifest_bytes(Manifest(1, "demo", "home", {"popularity": uri}, "2026-01-12T11:00:00Z")))
    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history_of_two,
                            read_audit=no_audit)
    [row] = manifest_rows(result)
    assert row["after"] == f"popularity {V1[:12]}"


def test_a_write_naming_versions_from_staging_says_their_records_have_no_build_time(target, client):
    """A promote from staging writes records without a build time: the write is shown, saying so."""
    def history(target, tenant, surface, kind=None):
        return [record(V2, 11, "0001-01-01T00:00:00Z"), record(V1, 10, "2026-01-10T01:30:00Z")]

    result = check_timeline(target, "demo", "home", now=NOW, client=client, read_history=history,
                            read_audit=no_audit, read_manifest=manifest_naming("2026-01-12T10:00:00Z", popularity=V2))
    [row] = manifest_rows(result)
    assert row["what"] == "manifest updated" and "popularity came from staging" in row["why"]
