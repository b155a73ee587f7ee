"""Publish invariants (§1.4), on both stores: the manifest moves last, records are never rewritten, failures
leave serving untouched and say why."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_stack.formats import artifact_version, check_artifact, parse_manifest
from recsys_stack.objstore import S3Store, manifest_key, record_key
from recsys_stack.publisher import PublishError, checkpoint_path, next_day, publish, read_checkpoint, run_logs

pytestmark = pytest.mark.stack

T, S = "demo", "home"
DAY1, DAY2 = date(2026, 1, 1), date(2026, 1, 2)
NOW1 = datetime(2026, 1, 2, 1, 30, tzinfo=UTC)
NOW2 = datetime(2026, 1, 3, 1, 30, tzinfo=UTC)
MANIFEST = manifest_key(T, S)


@pytest.fixture
def published(object_store, tmp_path: Path):
    """A store and stack root where demo/home has day 1 published: (store, root, run log)."""
    run = publish(object_store, tmp_path, tenant=T, surface=S, day=DAY1, now=NOW1)
    return object_store, tmp_path, run


def _current(store) -> dict:
    return parse_manifest(store.get(MANIFEST))["current"]


def test_a_publish_writes_blobs_records_and_the_manifest_then_the_checkpoint(published):
    """Success: both kinds in current, a record per version, a run log with every step, checkpoint = the day."""
    store, root, run = published
    manifest = parse_manifest(store.get(MANIFEST))
    assert manifest["updated_at"] == "2026-01-02T01:30:00Z"
    assert set(manifest["current"]) == {"popularity", "cooc"}
    for kind, version in run["versions"].items():
        assert manifest["current"][kind] == store.uri(f"objectstore/{T}/{S}/{kind}/{version}.json")
        record = json.loads(store.get(record_key(T, S, kind, version)))
        assert record["URI"] == manifest["current"][kind] and record["Version"] == version
        assert record["Window"] == {"Start": "2026-01-01T00:00:00Z", "End": "2026-01-02T00:00:00Z"}
    assert run["status"] == "ok" and run["exit_code"] == 0 and run["error"] is None
    steps = [(s["step"], s["kind"]) for s in run["steps"]]
    assert steps == [
        ("manifest", None), ("events", None),
        ("build", "popularity"), ("blob", "popularity"), ("validate", "popularity"), ("record", "popularity"),
        ("build", "cooc"), ("blob", "cooc"), ("validate", "cooc"), ("record", "cooc"),
        ("swap", None), ("checkpoint", None),
    ]  # fmt: skip
    assert read_checkpoint(root, T, S) == DAY1
    assert json.loads(checkpoint_path(root, T, S).read_text()) == {"day": "2026-01-01"}
    saved = json.loads(Path(run["path"]).read_text())
    assert saved["run_id"] == run["run_id"] and Path(run["path"]).parent == root / "runs" / T / S
    printed = Path(run["log_path"]).read_text().splitlines()  # what the suite's binary prints, stage by stage
    assert [line.split(" INFO ", 1)[1].split(" ", 2)[:2] for line in printed] == [
        ["ingest:", "start"], ["ingest:", "done"], ["validate:", "start"], ["publish:", "start"], ["publish:", "done"]]
    assert "start=2026-01-01T00:00:00Z end=2026-01-02T00:00:00Z" in printed[0]


def test_every_published_blob_recomputes_to_its_version(published):
    """Each blob under objectstore/ hashes to the version in its name, its build and its record."""
    store, _, _ = published
    blobs = store.list(f"objectstore/{T}/{S}/")
    assert len(blobs) == 2
    for key in blobs:
        kind, name = key.split("/")[-2:]
        doc = check_artifact(store.get(key), kind=kind, tenant=T, surface=S)
        assert artifact_version(doc) == doc["build"]["version"] == name.removesuffix(".json")


def test_the_next_day_publishes_new_versions_and_advances_the_checkpoint(published):
    """Day 2 has different popularity, so new versions are swapped in; the day-1 records stay."""
    store, root, first = published
    second = publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2)
    assert second["versions"]["popularity"] != first["versions"]["popularity"]
    assert _current(store)["popularity"].endswith(second["versions"]["popularity"] + ".json")
    assert len(store.list(f"registry/records/{T}/{S}/popularity/")) == 2
    assert read_checkpoint(root, T, S) == DAY2
    assert next_day(store, T, S) == date(2026, 1, 3)


def test_publishing_the_same_day_twice_rewrites_no_record_or_blob(published, store_kind):
    """A re-publish of an identical day leaves record and blob bytes, ETags (and file mtimes) unchanged."""
    store, root, _ = published
    keys = [k for k in store.list("registry/") + store.list("objectstore/") if k != MANIFEST]
    before = {key: store.get_with_etag(key) for key in keys}
    mtimes = {key: (root / "store" / key).stat().st_mtime_ns for key in keys} if store_kind == "file" else {}
    again = publish(store, root, tenant=T, surface=S, day=DAY1, now=NOW2)
    assert {key: store.get_with_etag(key) for key in keys} == before
    assert [k for k in store.list("registry/") + store.list("objectstore/") if k != MANIFEST] == keys
    if mtimes:
        assert {key: (root / "store" / key).stat().st_mtime_ns for key in keys} == mtimes
    status = {(s["step"], s["kind"]): s["status"] for s in again["steps"]}
    assert status[("record", "popularity")] == status[("record", "cooc")] == "noop"
    assert status[("blob", "popularity")] == "noop"


def test_a_re_publish_of_the_same_day_refreshes_updated_at(published):
    """The swap always happens: same pointers, but updated_at is the time of this publish (§1.1), as in the suite."""
    store, root, _ = published
    before = parse_manifest(store.get(MANIFEST))
    again = publish(store, root, tenant=T, surface=S, day=DAY1, now=NOW2)
    after = parse_manifest(store.get(MANIFEST))
    assert after["current"] == before["current"]
    assert (before["updated_at"], after["updated_at"]) == ("2026-01-02T01:30:00Z", "2026-01-03T01:30:00Z")
    assert {(s["step"], s["status"]) for s in again["steps"]} >= {("swap", "ok"), ("checkpoint", "ok")}


def test_a_publish_of_one_kind_merges_into_current(published):
    """Publishing only popularity replaces that pointer and keeps the existing cooc pointer."""
    store, root, _ = published
    before = _current(store)
    run = publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, kinds=("popularity",))
    after = _current(store)
    assert after["cooc"] == before["cooc"]
    assert after["popularity"] != before["popularity"]
    assert after["popularity"].endswith(run["versions"]["popularity"] + ".json")


def test_a_publish_keeps_kinds_it_does_not_produce(published):
    """current entries of other kinds (e.g. implicit from another job) survive a publish."""
    store, root, _ = published
    data, etag = store.get_with_etag(MANIFEST)
    manifest = parse_manifest(data)
    manifest["current"]["implicit"] = "s3://elsewhere/implicit.json"
    from recsys_stack.formats import manifest_bytes

    store.put(MANIFEST, manifest_bytes(manifest), if_match=etag)
    publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2)
    assert _current(store)["implicit"] == "s3://elsewhere/implicit.json"


FAILURES = [
    ("blob", "popularity", "dependency"),
    ("validate", "popularity", "validation_failed"),
    ("record", "popularity", "dependency"),
    ("blob", "cooc", "dependency"),
    ("validate", "cooc", "validation_failed"),
    ("record", "cooc", "dependency"),
    ("swap", None, "dependency"),
]


@pytest.mark.parametrize(("step", "kind", "error_kind"), FAILURES, ids=[f"{s}:{k}" for s, k, _ in FAILURES])
def test_a_failure_at_any_step_leaves_the_manifest_untouched(published, step, kind, error_kind):
    """Failing at blob, validate, record or swap: manifest bytes unchanged, error named, run log failed,
    checkpoint not advanced."""
    store, root, _ = published
    before = store.get_with_etag(MANIFEST)
    fail_at = f"{step}:{kind}" if kind else step
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, fail_at=fail_at)
    error = caught.value
    assert error.kind == error_kind and error.exit_code == 1
    # The suite's typed-error shape, `<kind>: <message>: <kind>` with the detail on the next line.
    first, detail = str(error).split("\n")
    assert first.startswith(f"run failed: {error_kind}: ") and first.endswith(f": {error_kind}")
    assert f"at {fail_at}" in detail or detail == "computed=injected payload=injected"
    assert store.get_with_etag(MANIFEST) == before
    assert read_checkpoint(root, T, S) == DAY1
    log = run_logs(root, T, S)[0]
    assert log == {k: v for k, v in error.run_log.items() if k not in ("path", "log_path", "output")}
    assert log["status"] == "failed" and log["exit_code"] == 1 and log["error"] == str(error)
    assert log["day"] == "2026-01-02"
    assert log["steps"][-1] == {**log["steps"][-1], "step": step, "kind": kind, "status": "failed"}


def test_a_failed_record_leaves_an_orphan_blob_but_no_record(published):
    """fail_at record: the blob was written and validated, the record was not, serving is unchanged."""
    store, root, _ = published
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, fail_at="record")
    version = next(s for s in caught.value.run_log["steps"] if s["step"] == "build")["version"]
    assert store.exists(f"objectstore/{T}/{S}/popularity/{version}.json")
    assert not store.exists(record_key(T, S, "popularity", version))
    assert version not in _current(store)["popularity"]


class _RacingStore:
    """Delegates to a store, but another writer replaces the manifest just before our swap."""

    def __init__(self, inner, rival: bytes) -> None:
        self._inner, self._rival = inner, rival

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def put(self, key, data, **condition):
        if key == MANIFEST:
            self._inner.put(key, self._rival)
        return self._inner.put(key, data, **condition)


def test_a_manifest_changed_during_the_publish_is_not_overwritten(published):
    """Compare-and-swap: if the manifest moved after it was read, the swap fails and the other write stays."""
    store, root, _ = published
    rival = store.get(MANIFEST).replace(b"2026-01-02T01:30:00Z", b"2026-01-02T09:00:00Z")
    with pytest.raises(PublishError) as caught:
        publish(_RacingStore(store, rival), root, tenant=T, surface=S, day=DAY2, now=NOW2)
    assert caught.value.kind == "dependency" and "changed during the publish" in str(caught.value)
    assert store.get(MANIFEST) == rival
    assert read_checkpoint(root, T, S) == DAY1


def test_too_many_events_or_items_fail_with_the_suites_lines(published):
    """max_events_per_run and max_distinct_items_per_run below the day's volume stop the run before any blob, with
    the lines the suite prints (the count check at ingest has no kind word; the validator's has its numbers)."""
    store, root, _ = published
    before = store.get_with_etag(MANIFEST)
    blobs = store.list("objectstore/")
    cases = (({"max_events_per_run": 100}, r"run failed: event limit exceeded: \d+ > 100"),
             ({"max_distinct_items_per_run": 5}, r"run failed: validation_failed: distinct item count exceeds max: "
                                                 r"validation_failed\nitems=\d+ max=5"))
    for limits, printed in cases:
        with pytest.raises(PublishError) as caught:
            publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, **limits)
        assert re.fullmatch(printed, str(caught.value)), str(caught.value)
        assert caught.value.run_log["output"].endswith(str(caught.value) + "\n")
    assert store.get_with_etag(MANIFEST) == before and store.list("objectstore/") == blobs
    assert read_checkpoint(root, T, S) == DAY1


def test_an_invalid_payload_fails_with_validation_failed(published):
    """An artifact that fails validation (negative count) is never recorded nor swapped in."""
    store, root, _ = published
    before = store.get(MANIFEST)
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2,
                override={"popularity": [{"item_id": "sku-0001", "count": -3}]})  # fmt: skip
    assert caught.value.kind == "validation_failed" and "non-negative" in str(caught.value)
    assert store.get(MANIFEST) == before
    assert len(store.list(f"registry/records/{T}/{S}/popularity/")) == 1


def test_an_empty_override_publishes_a_valid_empty_popularity_artifact(published):
    """override {"popularity": []}: a valid, empty artifact is recorded and swapped in (the bad-publish fault)."""
    store, root, _ = published
    run = publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, override={"popularity": []})
    uri = _current(store)["popularity"]
    doc = check_artifact(store.get(store.key_for_uri(uri)), kind="popularity", tenant=T, surface=S)
    assert doc["items"] == [] and doc["build"]["version"] == run["versions"]["popularity"]
    assert store.exists(record_key(T, S, "popularity", run["versions"]["popularity"]))


@pytest.mark.parametrize("tenant", ["../x", "", "a/b", " demo"])
def test_an_unsafe_tenant_is_refused_before_any_path_is_built(object_store, tmp_path, tenant):
    """A bad tenant raises invalid_argument (exit 2) and creates no events, runs or store keys."""
    with pytest.raises(PublishError) as caught:
        publish(object_store, tmp_path, tenant=tenant, surface=S, day=DAY1, now=NOW1)
    assert caught.value.kind == "invalid_argument" and caught.value.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == (["store"] if (tmp_path / "store").exists() else [])
    assert object_store.list("") == []


def test_an_unknown_fail_at_or_kind_is_a_usage_error(object_store, tmp_path):
    """fail_at and kinds are checked up front: invalid_argument with exit code 2."""
    for kwargs in ({"fail_at": "publish"}, {"fail_at": "swap:cooc"}, {"kinds": ("implicit",)}):
        with pytest.raises(PublishError) as caught:
            publish(object_store, tmp_path, tenant=T, surface=S, day=DAY1, now=NOW1, **kwargs)
        assert caught.value.kind == "invalid_argument" and caught.value.exit_code == 2


def test_next_day_falls_back_to_yesterday_without_a_manifest(object_store):
    """No manifest yet: the day to publish is yesterday (UTC)."""
    assert next_day(object_store, T, S, today=date(2026, 3, 1)) == date(2026, 2, 28)


def test_next_day_is_the_end_of_the_current_popularity_window(published):
    """After day 1 is published the next day is day 2, whatever today is."""
    store, _, _ = published
    assert next_day(store, T, S, today=date(2030, 1, 1)) == DAY2


def test_an_unreachable_store_fails_with_dependency_and_a_run_log(tmp_path, closed_port):
    """Store down: run failed: dependency, the run log says so, no checkpoint."""
    with S3Store(f"http://127.0.0.1:{closed_port}", "recsys-artifacts", "k", "s") as store:
        with pytest.raises(PublishError) as caught:
            publish(store, tmp_path, tenant=T, surface=S, day=DAY1, now=NOW1)
    assert caught.value.kind == "dependency" and "unreachable" in str(caught.value)
    assert run_logs(tmp_path, T, S)[0]["status"] == "failed"
    assert read_checkpoint(tmp_path, T, S) is None


def test_a_corrupt_manifest_stops_the_publish_and_names_the_fix(published):
    """A manifest that is not valid JSON cannot be merged into: dependency error pointing at rollback."""
    store, root, _ = published
    _, etag = store.get_with_etag(MANIFEST)
    store.put(MANIFEST, b'{"v": 1, "ten', if_match=etag)
    with pytest.raises(PublishError) as caught:
        publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2)
    assert caught.value.kind == "dependency" and "read manifest" in str(caught.value) and "not valid JSON" in str(caught.value)
    assert store.get(MANIFEST) == b'{"v": 1, "ten'


def test_the_scheduled_day_continues_from_the_checkpoint_after_a_rollback(published):
    """Day 2 published, then the manifest put back on day 1: the next scheduled day is day 3, not day 2 again."""
    from recsys_stack.publisher import scheduled_day

    store, root, _ = published
    day1_manifest = store.get(MANIFEST)
    publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2)
    store.put(MANIFEST, day1_manifest)  # a rollback to day 1
    assert next_day(store, T, S) == DAY2  # the manifest's window alone would re-publish day 2
    assert scheduled_day(store, root, T, S) == date(2026, 1, 3)


def test_configured_job_limits_apply_until_restored(published):
    """A lowered max_events in pipeline.json fails every run of the day; resetting restores the default."""
    from recsys_stack.publisher import job_limits, reset_job_limits, set_job_limits

    store, root, _ = published
    set_job_limits(root, max_events_per_run=1)
    assert job_limits(root) == {"max_events_per_run": 1}
    assert json.loads((root / "pipeline.json").read_text()) == {"limits": {"max_events_per_run": 1}}
    with pytest.raises(ValueError, match="unknown job limit"):
        set_job_limits(root, max_events=1)
    with pytest.raises(PublishError) as failed:
        publish(store, root, tenant=T, surface=S, day=DAY2, now=NOW2, **job_limits(root))
    assert re.fullmatch(r"run failed: event limit exceeded: \d+ > 1", str(failed.value))
    assert reset_job_limits(root) is True and job_limits(root) == {} and reset_job_limits(root) is False


def _window_state(store, root: Path, window_end: date | None, checkpoint: date | None) -> None:
    """demo/home's manifest names a popularity version whose record's window ends on ``window_end`` (no manifest
    when None), and the checkpoint says ``checkpoint`` (none when None)."""
    from recsys_stack.formats import manifest_bytes, manifest_dict

    if window_end is not None:
        version = "a" * 64
        uri = store.uri(f"objectstore/{T}/{S}/popularity/{version}.json")
        store.put(MANIFEST, manifest_bytes(manifest_dict(T, S, {"popularity": uri}, "2026-01-01T00:00:00Z")))
        end = f"{window_end.isoformat()}T00:00:00Z"
        store.put(record_key(T, S, "popularity", version), json.dumps({"Window": {"End": end}, "URI": uri}).encode())
    if checkpoint is not None:
        checkpoint_path(root, T, S).parent.mkdir(parents=True, exist_ok=True)
        checkpoint_path(root, T, S).write_text(json.dumps({"day": checkpoint.isoformat()}))


@settings(max_examples=60, deadline=None)
@given(today=st.dates(min_value=date(2025, 1, 1), max_value=date(2030, 12, 31)),
       window_offset=st.one_of(st.none(), st.integers(-30, 5)),
       checkpoint_offset=st.one_of(st.none(), st.integers(-30, 5)))
def test_the_scheduled_day_is_always_a_day_that_has_ended(today, window_offset, checkpoint_offset):
    """Whatever the manifest's window and the checkpoint say (even ahead of the calendar), the scheduler's day is
    one whose window has ended, and it is the day after the checkpoint and the current window whenever that one has."""
    import tempfile

    from recsys_stack.objstore import FileStore
    from recsys_stack.publisher import scheduled_day

    window_end = None if window_offset is None else today + timedelta(days=window_offset)
    checkpoint = None if checkpoint_offset is None else today + timedelta(days=checkpoint_offset)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = FileStore(root / "store")
        _window_state(store, root, window_end, checkpoint)
        day = scheduled_day(store, root, T, S, today=today)
        ends = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        assert ends <= datetime(today.year, today.month, today.day, tzinfo=UTC)  # the window has ended
        # The oracle: the day after the current window (yesterday without a manifest) and after the checkpoint.
        wanted = window_end if window_end is not None else today - timedelta(days=1)
        if checkpoint is not None:
            wanted = max(wanted, checkpoint + timedelta(days=1))
        if wanted < today:
            assert day == wanted
        else:
            assert day == today - timedelta(days=1)
