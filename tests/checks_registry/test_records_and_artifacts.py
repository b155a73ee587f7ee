"""Version records in the suite's format, and the artifact validator's detectors."""

from __future__ import annotations

import json

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge.registry import artifact, history, version_records
from recsys_checks.judge.registry.artifact import inspect_artifact
from recsys_checks.judge.registry.version_records import parse_version_record


def test_reads_capitalised_records_with_zero_and_nanosecond_built_at(file_registry, versions):
    """The suite's records (Go field names, zero BuiltAt, nanosecond BuiltAt, Segment) are read as written."""
    recs = {r.version: r for r in version_records.version_history(file_registry.target, "demo", "home")}
    staging = recs[versions.pop_day1_staging]
    assert staging.from_staging and staging.built_at == "0001-01-01T00:00:00Z"
    assert recs[versions.pop_day3_current].built_at == "2026-01-04T01:23:45.123456789Z"
    assert {r.segment for r in recs.values()} == {"default"}
    assert recs[versions.cooc_day2].kind == "cooc"
    assert recs[versions.pop_day3_current].raw["Key"]["Type"] == "popularity"


def test_history_is_newest_first_by_window_end_then_nanosecond_built_at(file_registry, versions):
    """Two builds of one day that differ only in nanoseconds sort by them; the staging build is oldest."""
    pops = [r.version for r in version_records.version_history(file_registry.target, "demo", "home", kind="popularity")]
    assert pops == [
        versions.pop_day4_empty,
        versions.pop_day3_current,
        versions.pop_day2_later,
        versions.pop_day2_earlier,
        versions.pop_day1_staging,
    ]


def test_record_keys_are_matched_case_insensitively_like_go():
    """A record with lower-case keys reads like Go's decoder reads it."""
    rec = parse_version_record(json.dumps({
        "key": {"tenant": "demo", "surface": "home", "segment": "default", "type": "cooc"},
        "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        "version": "a" * 64, "uri": "s3://b/k.json", "builtAt": "2026-01-02T01:00:00+02:00",
    }))
    assert (rec.kind, rec.version, rec.segment) == ("cooc", "a" * 64, "default")


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda d: d.pop("BuiltAt"), "BuiltAt"),
        (lambda d: d.update(BuiltAt="yesterday"), "BuiltAt"),
        (lambda d: d.update(Version="ABC"), "Version"),
        (lambda d: d["Key"].update(Type="embeddings"), "Key.Type"),
        (lambda d: d["Key"].update(Tenant="../x"), "tenant"),
    ],
)
def test_parse_record_rejects_malformed_records(file_registry, versions, mutate, names):
    """A record missing or mangling a field raises BadInput naming it."""
    doc = json.loads(file_registry.read(f"registry/records/demo/home/popularity/{versions.pop_day3_current}.json"))
    mutate(doc)
    with pytest.raises(BadInput) as exc:
        parse_version_record(json.dumps(doc))
    assert names in str(exc.value)


def test_unreadable_record_is_reported_not_fatal(file_registry):
    """A broken record makes history warn; the other versions are still listed."""
    file_registry.write("registry/records/demo/home/popularity/" + "0" * 64 + ".json", b"{oops")
    res = history.check_manifest_history(file_registry.target, "demo", "home")
    assert res.status == "warn" and "unreadable" in res.summary
    assert len(res.data["versions"]) == 7


# ---------------------------------------------------------------------------------------------- detectors


def _validate(reg, kind, version, **kw):
    return artifact.validate_artifact(reg.target, reg.blob_uri(kind, version), tenant="demo", surface="home", kind=kind, **kw)


def test_valid_blobs_pass_and_their_hashes_recompute(file_registry, versions):
    """Every non-empty suite blob validates: the version hash recomputes from the compact form."""
    for kind, v in [("popularity", versions.pop_day1_staging), ("popularity", versions.pop_day2_later),
                    ("popularity", versions.pop_day3_current), ("cooc", versions.cooc_day2),
                    ("cooc", versions.cooc_day3_current)]:
        res = _validate(file_registry, kind, v)
        assert res.status == "ok", res.summary
        assert res.data["computed_version"] == v


def _edit_blob(reg, kind, version, edit):
    rel = f"objectstore/demo/home/{kind}/{version}.json"
    doc = json.loads(reg.read(rel))
    edit(doc)
    reg.write(rel, json.dumps(doc, indent=2).encode())


def test_missing_blob_fires(file_registry, versions):
    """A blob that is not in the store fails as missing."""
    file_registry.remove(f"objectstore/demo/home/popularity/{versions.pop_day2_later}.json")
    res = _validate(file_registry, "popularity", versions.pop_day2_later)
    assert res.status == "fail" and "missing" in res.summary


def test_hash_mismatch_fires(file_registry, versions):
    """A blob whose content no longer hashes to its version fails."""
    _edit_blob(file_registry, "popularity", versions.pop_day2_later, lambda d: d["items"][0].update(count=13))
    res = _validate(file_registry, "popularity", versions.pop_day2_later)
    assert res.status == "fail" and "version hash mismatch" in res.summary


def test_blob_named_for_another_version_fires(file_registry, versions):
    """A valid blob stored under another version's name fails: it is not what its record says."""
    res = artifact.validate_artifact(file_registry.target, file_registry.blob_uri("popularity", versions.pop_day2_later),
                              tenant="demo", surface="home", kind="popularity", version=versions.pop_day3_current)
    assert res.status == "fail" and "hash mismatch" in res.summary


def test_wrong_tenant_in_blob_fires(file_registry, versions):
    """A blob built for another tenant fails, naming the tenant."""
    _edit_blob(file_registry, "popularity", versions.pop_day2_later, lambda d: d.update(tenant="acme"))
    res = _validate(file_registry, "popularity", versions.pop_day2_later)
    assert res.status == "fail"
    assert any("tenant 'acme'" in p for p in res.data["problems"])


def test_wrong_artifact_type_fires(file_registry, versions):
    """A cooc blob offered as popularity fails."""
    res = artifact.validate_artifact(file_registry.target, file_registry.blob_uri("cooc", versions.cooc_day2),
                              tenant="demo", surface="home", kind="popularity")
    assert res.status == "fail" and "artifact_type" in res.summary


def test_empty_popularity_fires_unless_allowed(file_registry, versions):
    """An empty popularity artifact (valid hash) fails; allowed explicitly it only warns."""
    res = _validate(file_registry, "popularity", versions.pop_day4_empty)
    assert res.status == "fail" and "no items" in res.summary
    assert res.data["computed_version"] == versions.pop_day4_empty
    assert _validate(file_registry, "popularity", versions.pop_day4_empty, allow_empty=True).status == "warn"


def test_window_differing_from_record_fires(file_registry, versions):
    """A blob whose window is not its record's window fails."""
    res = _validate(file_registry, "popularity", versions.pop_day3_current,
                    window=("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"))
    assert res.status == "fail" and "window" in res.summary


@pytest.mark.parametrize(
    ("data", "names"),
    [(b"{oops", "not valid JSON"), (b"[1]", "not a JSON object"), (b'{"v": 2}', "v=2"), (b"x" * 50, "JSON")],
)
def test_inspect_artifact_flags_unreadable_content(data, names):
    """Garbage, non-objects and the wrong v are problems."""
    problems, _, _ = inspect_artifact(data, tenant="demo", surface="home", kind="popularity")
    assert any(names in p for p in problems)


def test_inspect_artifact_enforces_the_size_limit(file_registry, versions):
    """A blob above the service's byte limit fails."""
    data = file_registry.read(f"objectstore/demo/home/popularity/{versions.pop_day3_current}.json")
    problems, _, _ = inspect_artifact(data, tenant="demo", surface="home", kind="popularity", max_bytes=10)
    assert any("limit" in p for p in problems)


def test_fast_compact_serialisation_matches_the_go_walk_exactly():
    """The one-call encoder path gives the same text as the Go-style walk, escapes and number text included."""
    from recsys_checks.judge.registry.artifact import _go_compact_walk, go_compact, load_json

    docs = [
        load_json('{"a":"<b>&\u2028\u2029é\\u0001","n":[1,-2,0],"o":{"z":null,"t":true,"f":false}}'),
        load_json('{"score":1.50,"big":2e3,"items":[{"item_id":"x","score":0.1}]}'),
        {"plain": [1, 2, {"k": "v"}], "s": 'quote" and backslash\\'},
    ]
    for doc in docs:
        assert go_compact(doc) == _go_compact_walk(doc)
        assert go_compact(doc, number_text=getattr(doc, "number_text", None)) == _go_compact_walk(doc)
    assert go_compact(docs[1]) == '{"score":1.50,"big":2e3,"items":[{"item_id":"x","score":0.1}]}'


def test_a_blob_with_a_lone_surrogate_is_invalid_not_a_crash():
    """An invalid \\ud800 escape makes the version unrecomputable: a problem is reported, nothing raises."""
    from recsys_checks.judge.registry.artifact import inspect_artifact

    blob = (b'{"v":1,"artifact_type":"popularity","tenant":"demo","surface":"home",'
            b'"window":{"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"},'
            b'"items":[{"item_id":"\\ud800","count":1}],"build":{"built_at":"","version":"' + b"0" * 64 + b'"}}')
    problems, _notes, _info = inspect_artifact(blob, tenant="demo", surface="home", kind="popularity")
    assert any("surrogate" in p for p in problems)
