"""Manifest status, history and rollback over both stores (file, and S3 on loopback)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from recsys_checks.core.errors import BadInput, Conflict
from recsys_checks.judge import auditlog
from recsys_checks.judge.registry import history, manifest
from recsys_checks.levers import rollback

MANIFEST = "registry/current/demo/home/manifest.json"
FRESH = datetime(2026, 1, 4, 9, 0, tzinfo=UTC)  # 7.5 h after the fixture's publish
PREVIOUS_AT = datetime(2026, 1, 4, 9, 15, tzinfo=UTC)
TO_AT = datetime(2026, 1, 4, 9, 20, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------- status


def test_status_is_ok_for_a_fresh_valid_manifest(registry):
    """A fresh manifest whose blobs all validate is healthy; state is the manifest's ETag."""
    res = manifest.check_manifest(registry.target, "demo", "home", now=FRESH)
    assert res.status == "ok", res.summary
    assert res.data["condition"] == "healthy"
    assert res.state and res.state.strip('"')
    assert {a["kind"] for a in res.data["artifacts"]} == {"cooc", "popularity"}


def test_status_fires_when_older_than_max_age(registry):
    """27 h after the publish the default 26 h limit makes the manifest stale."""
    res = manifest.check_manifest(registry.target, "demo", "home", now=datetime(2026, 1, 5, 4, 30, tzinfo=UTC))
    assert res.status == "fail" and res.data["condition"] == "stale"
    assert "stale" in res.summary and "26h" in res.summary


def test_status_max_age_follows_the_schedule(registry):
    """The same age is fresh under a wider limit (e.g. for a weekly pipeline)."""
    res = manifest.check_manifest(registry.target, "demo", "home", max_age=timedelta(days=8), now=datetime(2026, 1, 5, 4, 30, tzinfo=UTC))
    assert res.status == "ok"


def test_status_fires_on_missing_manifest(registry):
    """No manifest: fail with condition missing."""
    registry.remove(MANIFEST)
    res = manifest.check_manifest(registry.target, "demo", "home", now=FRESH)
    assert res.status == "fail" and res.data["condition"] == "missing" and res.state is None


@pytest.mark.parametrize("change", [{"extra": True}, {"v": 2}, {"updated_at": "2026-01-04 01:24:05"},
                                    {"tenant": "acme"}])
def test_status_fires_on_invalid_manifest(registry, change):
    """A manifest that is not strict v1 for this tenant/surface fails as invalid, naming the problem."""
    doc = json.loads(registry.read(MANIFEST))
    doc.update(change)
    registry.write(MANIFEST, json.dumps(doc).encode())
    res = manifest.check_manifest(registry.target, "demo", "home", now=FRESH)
    assert res.status == "fail" and res.data["condition"] == "invalid"
    assert "rollback" in res.summary or "roll back" in res.summary


def test_status_fires_when_a_blob_is_missing(registry, versions):
    """A manifest pointing at a missing blob is invalid even when fresh."""
    registry.remove(f"objectstore/demo/home/cooc/{versions.cooc_day3_current}.json")
    res = manifest.check_manifest(registry.target, "demo", "home", now=FRESH)
    assert res.status == "fail" and res.data["condition"] == "invalid" and "missing" in res.summary


# ------------------------------------------------------------------------------------------------ history


def test_history_marks_current_and_valid_rollback_targets(registry, versions):
    """Current versions are marked; the empty popularity is not a valid rollback target."""
    res = history.check_manifest_history(registry.target, "demo", "home")
    assert res.status == "ok", res.summary
    rows = {r["version"]: r for r in res.data["versions"]}
    assert [r["version"] for r in res.data["versions"]][0] == versions.pop_day4_empty
    assert rows[versions.pop_day3_current]["current"] and not rows[versions.pop_day3_current]["rollback_target"]
    assert not rows[versions.pop_day4_empty]["valid"] and not rows[versions.pop_day4_empty]["rollback_target"]
    assert rows[versions.pop_day1_staging]["rollback_target"] and rows[versions.pop_day1_staging]["from_staging"]


def test_history_fails_without_records(registry):
    """No records at all is a failure: there is nothing to roll back to."""
    res = history.check_manifest_history(registry.target, "demo", "search")
    assert res.status == "fail" and "no version records" in res.summary


# ----------------------------------------------------------------------------------------------- rollback


def test_rollback_previous_writes_the_suite_format(registry, versions):
    """--previous moves each kind to its newest valid older version; the manifest is byte-identical to the expected."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, reason="bad publish")
    assert {c["kind"]: c["after_version"] for c in plan.changes} == {
        "popularity": versions.pop_day2_later, "cooc": versions.cooc_day2}
    res = rollback.apply_rollback(registry.target, plan, execute=True, actor="alice", runbook="rollback-manifest",
                           now=PREVIOUS_AT)
    assert res.status == "applied" and res.verification.ok
    assert registry.read(MANIFEST) == registry.expected("manifest-after-previous.json")


def test_rollback_to_a_version_resolves_its_kind(registry, versions):
    """--to a (prefix of a) staging version moves only popularity; byte-identical to the expected."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day1_staging[:10])
    assert [c["kind"] for c in plan.changes] == ["popularity"]
    res = rollback.apply_rollback(registry.target, plan, execute=True, actor="bob", now=TO_AT)
    assert res.status == "applied"
    assert registry.read(MANIFEST) == registry.expected("manifest-after-to-staging.json")


def test_rollback_kind_restricts_previous(registry, versions):
    """--previous with kind=cooc leaves popularity alone."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, kind="cooc")
    assert [(c["kind"], c["after_version"]) for c in plan.changes] == [("cooc", versions.cooc_day2)]
    assert plan.details["after_current"]["popularity"] == registry.blob_uri("popularity", versions.pop_day3_current)


def test_rollback_to_unknown_version_names_how_to_list(registry):
    """An unknown version raises BadInput that names the history command."""
    with pytest.raises(BadInput) as exc:
        rollback.plan_rollback(registry.target, "demo", "home", to="deadbeef" * 8)
    assert "recsys-checks manifest history --tenant demo --surface home" in str(exc.value)


def test_rollback_needs_exactly_one_destination(registry):
    """Neither or both of to/previous is bad input."""
    with pytest.raises(BadInput):
        rollback.plan_rollback(registry.target, "demo", "home")
    with pytest.raises(BadInput):
        rollback.plan_rollback(registry.target, "demo", "home", to="a" * 64, previous=True)


def test_rollback_refuses_an_empty_artifact_unless_allowed(registry, versions):
    """The recorded empty popularity is refused before a plan exists; allow_empty permits it."""
    with pytest.raises(BadInput) as exc:
        rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day4_empty)
    assert "no items" in str(exc.value)
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day4_empty, allow_empty=True)
    assert plan.changes[0]["after_version"] == versions.pop_day4_empty


def test_rollback_refuses_a_blob_that_fails_its_hash(registry, versions):
    """A target whose blob no longer hashes to its version is refused at plan time."""
    rel = f"objectstore/demo/home/popularity/{versions.pop_day2_later}.json"
    registry.write(rel, registry.read(rel).replace(b'"count": 12', b'"count": 99'))
    with pytest.raises(BadInput) as exc:
        rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert "hash mismatch" in str(exc.value)


def test_previous_skips_invalid_versions(registry, versions):
    """--previous passes over a broken older version to the next valid one."""
    registry.remove(f"objectstore/demo/home/popularity/{versions.pop_day2_later}.json")
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, kind="popularity")
    assert plan.changes[0]["after_version"] == versions.pop_day2_earlier


def test_dry_run_changes_no_byte(registry):
    """Planning and a dry-run apply leave every object of the store identical."""
    before = registry.snapshot()
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True)
    res = rollback.apply_rollback(registry.target, plan)
    assert res.status == "planned" and res.audit is None
    assert "dry-run" in res.summary
    assert registry.snapshot() == before


def test_conflict_when_the_manifest_moved_after_planning(registry):
    """If the manifest changed after the plan, apply raises Conflict (exit 3) and changes nothing."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True)
    moved = registry.read(MANIFEST).replace(b"2026-01-04T01:24:05Z", b"2026-01-04T01:30:00Z")
    registry.write(MANIFEST, moved)
    before = registry.snapshot()
    with pytest.raises(Conflict) as exc:
        rollback.apply_rollback(registry.target, plan, execute=True)
    assert exc.value.exit_code == 3
    assert registry.snapshot() == before


def test_applying_the_same_plan_twice_is_a_noop_with_one_audit(registry):
    """The second apply is a no-op success; the audit record is written once and nothing is deleted."""
    before = registry.snapshot()
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, reason="bad publish")
    first = rollback.apply_rollback(registry.target, plan, execute=True, actor="alice", runbook="rollback-manifest")
    after_first = registry.snapshot()
    second = rollback.apply_rollback(registry.target, plan, execute=True, actor="alice", runbook="rollback-manifest")
    assert (first.status, second.status) == ("applied", "noop")
    assert registry.snapshot() == after_first
    assert set(before) <= set(after_first)  # nothing deleted
    changed = {k for k in before if before[k] != after_first[k]}
    assert changed == {MANIFEST}
    audits = auditlog.read_audit(registry.target, "demo", "home")
    assert len(audits) == 1 and audits[0]["uri"] == first.audit


def test_audit_record_says_who_when_why_and_is_never_rewritten(registry):
    """The audit object holds who/when/why/runbook/before/after/plan hash; a second write to it is refused."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, reason="bad publish on day 3")
    res = rollback.apply_rollback(registry.target, plan, execute=True, actor="alice", runbook="rollback-manifest",
                           now=PREVIOUS_AT)
    assert res.audit.startswith(registry.uri("registry/audit/demo/home/20260104T091500.000000Z-" + plan.plan_hash[:12]))
    (audit,) = auditlog.read_audit(registry.target, "demo", "home")
    assert (audit["who"], audit["when"], audit["why"], audit["runbook"]) == (
        "alice", "2026-01-04T09:15:00.000000Z", "bad publish on day 3", "rollback-manifest")
    assert audit["plan_hash"] == plan.plan_hash
    assert audit["before"]["current"] == plan.details["before"]["current"]
    assert audit["after"]["current"] == plan.details["after_current"]
    from recsys_checks.reach.store import TargetStores

    with TargetStores(registry.target) as st, pytest.raises(Conflict):
        st.put(res.audit, b"{}", if_none_match=True)
    assert auditlog.read_audit(registry.target, "demo", "home")[0]["who"] == "alice"


def test_actor_defaults_to_user(registry, monkeypatch):
    """Without an actor the audit's who is $USER."""
    monkeypatch.setenv("USER", "oncall-carol")
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True)
    rollback.apply_rollback(registry.target, plan, execute=True)
    assert auditlog.read_audit(registry.target, "demo", "home")[0]["who"] == "oncall-carol"


def test_actor_without_user_is_the_login_name_and_host(file_registry, monkeypatch):
    """In a container or CI without $USER the audit's who is login@host, never 'unknown'."""
    import pwd
    import socket

    for name in ("USER", "USERNAME", "RECSYS_ACTOR", "LOGNAME"):
        monkeypatch.delenv(name, raising=False)
    plan = rollback.plan_rollback(file_registry.target, "demo", "home", previous=True)
    rollback.apply_rollback(file_registry.target, plan, execute=True)
    expected = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    assert auditlog.read_audit(file_registry.target, "demo", "home")[0]["who"] == expected


def test_rollback_repairs_a_corrupt_manifest(registry, versions):
    """With an unreadable manifest --previous restores the newest valid version of each kind."""
    registry.write(MANIFEST, b"{garbage")
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True)
    assert plan.details["before"]["state"] == "invalid"
    assert {c["kind"]: c["after_version"] for c in plan.changes} == {
        "popularity": versions.pop_day3_current, "cooc": versions.cooc_day3_current}
    assert rollback.apply_rollback(registry.target, plan, execute=True).status == "applied"
    after = manifest.check_manifest(registry.target, "demo", "home", max_age=timedelta(days=365 * 10))
    assert after.data["condition"] == "healthy", after.summary
    # Today the fixture's data (January 2026) is old whatever the fresh updated_at the rollback wrote says.
    today = manifest.check_manifest(registry.target, "demo", "home")
    assert today.data["condition"] == "stale" and today.data["stale"] == "data", today.summary


def test_rollback_recreates_a_missing_manifest_create_only(registry, versions):
    """With no manifest the plan observes nothing; apply creates it only if nobody else did meanwhile."""
    original = registry.read(MANIFEST)
    registry.remove(MANIFEST)
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day2_later)
    assert plan.observed is None
    registry.write(MANIFEST, original)  # a publish landed after the plan
    with pytest.raises(Conflict):
        rollback.apply_rollback(registry.target, plan, execute=True)
    assert registry.read(MANIFEST) == original
    registry.remove(MANIFEST)
    assert rollback.apply_rollback(registry.target, plan, execute=True).status == "applied"
    m, _ = manifest.read_current(registry.target, "demo", "home")
    assert m.current == {"popularity": registry.blob_uri("popularity", versions.pop_day2_later)}


def test_noop_plan_is_reported_as_noop_even_in_dry_run(registry, versions):
    """Rolling back to what is already current plans nothing to change."""
    plan = rollback.plan_rollback(registry.target, "demo", "home", to=versions.pop_day3_current)
    assert plan.noop
    assert rollback.apply_rollback(registry.target, plan).status == "noop"
    assert rollback.apply_rollback(registry.target, plan, execute=True).status == "noop"
    assert auditlog.read_audit(registry.target, "demo", "home") == []


def test_history_validates_the_blobs_concurrently(file_registry):
    """A registry with thousands of versions is validated by a pool of readers, not one blob after another."""
    import threading
    import time

    from recsys_checks.reach.store import TargetStores

    class Counting(TargetStores):
        def __init__(self, target):
            super().__init__(target)
            self.active = self.peak = 0
            self.gate = threading.Lock()

        def get(self, uri):
            if "/objectstore/" not in uri:
                return super().get(uri)
            with self.gate:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                time.sleep(0.05)
                return super().get(uri)
            finally:
                with self.gate:
                    self.active -= 1

    with Counting(file_registry.target) as st:
        res = history.check_manifest_history(file_registry.target, "demo", "home", stores=st)
    assert res.data["versions"] and st.peak > 1


# ------------------------------------------------------------------------------------------ item-count drop


def _publish_small_day(registry, items: list[dict]) -> str:
    """Record and point at a day-4 popularity version of ``items`` (as a publish would), returning its version."""
    from recsys_checks.judge.registry.artifact import artifact_version

    doc = {"v": 1, "artifact_type": "popularity", "tenant": "demo", "surface": "home",
           "window": {"start": "2026-01-04T00:00:00Z", "end": "2026-01-05T00:00:00Z"}, "items": items,
           "build": {"built_at": "2026-01-05T01:20:00Z", "version": "", "source_hash": "src-small"}}
    version = artifact_version(doc)
    doc["build"]["version"] = version
    uri = registry.blob_uri("popularity", version)
    registry.write(f"objectstore/demo/home/popularity/{version}.json", json.dumps(doc, indent=2).encode())
    record = {"Key": {"Tenant": "demo", "Surface": "home", "Segment": "default", "Type": "popularity"},
              "Window": {"Start": "2026-01-04T00:00:00Z", "End": "2026-01-05T00:00:00Z"}, "Version": version,
              "URI": uri, "BuiltAt": "2026-01-05T01:20:00.000000009Z"}
    registry.write(f"registry/records/demo/home/popularity/{version}.json", json.dumps(record).encode())
    manifest = json.loads(registry.read(MANIFEST))
    manifest["current"]["popularity"] = uri
    manifest["updated_at"] = "2026-01-05T01:20:30Z"
    registry.write(MANIFEST, json.dumps(manifest, indent=2).encode())
    return version


def test_status_fires_when_an_artifact_lost_most_of_its_items(registry, versions, monkeypatch):
    """A valid new popularity with a third of the items of the version before it is condition shrunk, and the
    finding names both counts and the previous version (limits lowered to the fixture's small artifacts)."""
    monkeypatch.setattr("recsys_checks.judge.invariants.MIN_ITEMS_FOR_DROP", 3)
    _publish_small_day(registry, [{"item_id": "sku-0004", "count": 9}])
    res = manifest.check_manifest(registry.target, "demo", "home", now=datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    assert res.status == "fail" and res.data["condition"] == "shrunk", res.summary
    row = next(r for r in res.data["artifacts"] if r["kind"] == "popularity")
    assert row["status"] == "fail" and row["items"] == 1 and row["previous_items"] == 3
    assert row["previous_version"] == versions.pop_day3_current
    assert "1 items" in res.summary and "had 3" in res.summary
    cooc = next(r for r in res.data["artifacts"] if r["kind"] == "cooc")
    assert cooc["status"] == "ok"  # only the kind that shrank is marked


def test_status_is_quiet_when_an_artifact_kept_most_of_its_items(registry, monkeypatch):
    monkeypatch.setattr("recsys_checks.judge.invariants.MIN_ITEMS_FOR_DROP", 3)
    _publish_small_day(registry, [{"item_id": "sku-0004", "count": 9}, {"item_id": "sku-0003", "count": 5}])
    res = manifest.check_manifest(registry.target, "demo", "home", now=datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    assert res.status == "ok" and res.data["condition"] == "healthy", res.summary
    row = next(r for r in res.data["artifacts"] if r["kind"] == "popularity")
    assert row["previous_items"] == 3


def test_a_rollback_never_restores_a_shrunk_version(registry, versions, monkeypatch):
    """With the manifest unreadable, "the newest valid version" skips a version that lost most of the items of the
    one before it (a shrunk build rolled back from earlier) and restores the healthy one below it."""
    monkeypatch.setattr("recsys_checks.judge.invariants.MIN_ITEMS_FOR_DROP", 3)
    small = _publish_small_day(registry, [{"item_id": "sku-0004", "count": 9}])
    registry.write(MANIFEST, b'{"v": 1, "tenant": "demo", "curr')
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, reason="corrupt manifest")
    chosen = {c["kind"]: c["after_version"] for c in plan.changes}
    assert chosen["popularity"] == versions.pop_day3_current and chosen["popularity"] != small


def test_a_repoint_of_a_tolerated_manifest_lists_every_field_it_changes(registry, versions):
    """A manifest off the suite's contract in ways the service tolerates (a kind it does not have, an offset on
    updated_at) is usable, with a warning; the repoint writes it as the suite does, and its plan, the run record's
    ``changed`` and the audit record list the dropped kind and the re-stamped updated_at beside the moves."""
    from recsys_checks.core.results import ActionResult
    from recsys_checks.runbooks.remedy import Remedy
    from recsys_checks.runbooks.run import changes_of

    doc = json.loads(registry.read(MANIFEST))
    doc["current"]["embeddings"] = doc["current"]["popularity"]
    doc["updated_at"] = "2026-01-04T03:30:00+02:00"
    registry.write(MANIFEST, json.dumps(doc, indent=2).encode())
    status = manifest.check_manifest(registry.target, "demo", "home", now=FRESH)
    assert status.status == "warn" and status.data["condition"] == "healthy", status.summary
    assert any("embeddings" in d for d in status.data["deviations"])
    plan = rollback.plan_rollback(registry.target, "demo", "home", previous=True, kind="popularity", reason="r")
    assert [r["what"] for r in plan.details["rewrites"]] == ["current.embeddings", "updated_at"]
    res = rollback.apply_rollback(registry.target, plan, execute=True, actor="alice", now=PREVIOUS_AT)
    assert isinstance(res, ActionResult) and res.status == "applied"
    written = json.loads(registry.read(MANIFEST))
    assert "embeddings" not in written["current"] and written["updated_at"] == "2026-01-04T09:15:00Z"
    changed = {c["what"]: c for c in changes_of(Remedy("applied", "manifest-rollback", "", [res]))}
    assert set(changed) == {"current.popularity", "current.embeddings", "updated_at"}
    assert changed["current.embeddings"]["after"] is None and "dropped" in changed["current.embeddings"]["why"]
    (audit,) = auditlog.read_audit(registry.target, "demo", "home")
    rewrites = {r["what"]: r for r in audit["rewrites"]}
    assert rewrites["updated_at"] == {"what": "updated_at", "before": "2026-01-04T03:30:00+02:00",
                                      "after": "2026-01-04T09:15:00Z",
                                      "why": "re-stamped with the time of the swap (UTC, Z)"}
