"""The suite's wire formats, pinned byte for byte against hand-written expected text."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from recsys_stack.formats import (
    ArtifactInvalid,
    UnsafeSegment,
    artifact_bytes,
    artifact_version,
    build_artifact,
    canonical_jsonb,
    check_artifact,
    cooc_rows,
    day_window,
    doc_version,
    go_json,
    manifest_bytes,
    manifest_dict,
    parse_time,
    popularity_items,
    record_bytes,
    record_dict,
    rfc3339,
    rfc3339_nano,
    safe_segment,
)

V = "0123456789abcdef" * 4
URI = f"file:///abs/objectstore/demo/home/popularity/{V}.json"
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 2, tzinfo=UTC)
BUILT = datetime(2026, 1, 2, 1, 23, 45, tzinfo=UTC)


def test_manifest_bytes_are_indented_ordered_and_without_trailing_newline():
    """Manifest: 2-space indent, keys v, tenant, surface, current (sorted), updated_at; no newline at the end."""
    manifest = manifest_dict(
        "demo",
        "home",
        {"popularity": "file:///abs/objectstore/demo/home/popularity/p.json", "cooc": "s3://b/c.json"},
        datetime(2026, 1, 2, 1, 23, 45, 987654, tzinfo=UTC),
    )
    expected = (
        "{\n"
        '  "v": 1,\n'
        '  "tenant": "demo",\n'
        '  "surface": "home",\n'
        '  "current": {\n'
        '    "cooc": "s3://b/c.json",\n'
        '    "popularity": "file:///abs/objectstore/demo/home/popularity/p.json"\n'
        "  },\n"
        '  "updated_at": "2026-01-02T01:23:45Z"\n'
        "}"
    )
    assert manifest_bytes(manifest) == expected.encode()
    shuffled = {
        "updated_at": manifest["updated_at"],
        "current": manifest["current"],
        "surface": "home",
        "tenant": "demo",
        "v": 1,
    }
    assert manifest_bytes(shuffled) == expected.encode()


def test_record_bytes_use_go_field_names_and_nanosecond_built_at():
    """Record: capitalised keys in Go struct order, windows in RFC 3339, BuiltAt with all nine digits."""
    built_ns = int(BUILT.timestamp()) * 1_000_000_000 + 123_456_789
    record = record_dict("demo", "home", "popularity", V, URI, START, END, built_ns)
    expected = (
        "{\n"
        '  "Key": {\n'
        '    "Tenant": "demo",\n'
        '    "Surface": "home",\n'
        '    "Segment": "default",\n'
        '    "Type": "popularity"\n'
        "  },\n"
        '  "Window": {\n'
        '    "Start": "2026-01-01T00:00:00Z",\n'
        '    "End": "2026-01-02T00:00:00Z"\n'
        "  },\n"
        f'  "Version": "{V}",\n'
        f'  "URI": "{URI}",\n'
        '  "BuiltAt": "2026-01-02T01:23:45.123456789Z"\n'
        "}"
    )
    assert record_bytes(record) == expected.encode()


def test_record_built_at_follows_go_rfc3339nano_trimming_and_zero_time():
    """Microsecond datetimes lose trailing zeros like Go; a staging record can carry the zero time."""
    assert record_dict("t", "s", "cooc", V, URI, START, END, BUILT.replace(microsecond=120000))["BuiltAt"] == (
        "2026-01-02T01:23:45.12Z"
    )
    assert record_dict("t", "s", "cooc", V, URI, START, END, BUILT)["BuiltAt"] == "2026-01-02T01:23:45Z"
    zero = record_dict("t", "s", "cooc", V, URI, START, END, "0001-01-01T00:00:00Z")
    assert json.loads(record_bytes(zero))["BuiltAt"] == "0001-01-01T00:00:00Z"
    assert rfc3339_nano(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


def _small_popularity(**kwargs) -> dict:
    items = [{"item_id": "sku-0002", "count": 5}, {"item_id": "sku-0001", "count": 3}]
    return build_artifact("popularity", "demo", "home", START, END, items, built_at=BUILT, **kwargs)


def test_artifact_version_is_the_hash_of_the_compact_form_without_build():
    """Version = sha256 of compact JSON in header order with build {built_at: "", version: ""}, no source_hash."""
    compact = (
        '{"v":1,"artifact_type":"popularity","tenant":"demo","surface":"home",'
        '"window":{"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00Z"},'
        '"items":[{"item_id":"sku-0002","count":5},{"item_id":"sku-0001","count":3}],'
        '"build":{"built_at":"","version":""}}'
    )
    artifact = _small_popularity(source_hash="f" * 64)
    assert artifact["build"]["version"] == hashlib.sha256(compact.encode()).hexdigest()
    assert artifact_version(artifact) == artifact["build"]["version"]


def test_stored_blob_is_indented_with_build_filled_and_segment_omitted_when_empty():
    """Blob bytes: header order, no segment when empty, payload, then build {built_at, version, source_hash}."""
    artifact = _small_popularity(source_hash="f" * 64)
    version = artifact["build"]["version"]
    expected = (
        "{\n"
        '  "v": 1,\n'
        '  "artifact_type": "popularity",\n'
        '  "tenant": "demo",\n'
        '  "surface": "home",\n'
        '  "window": {\n'
        '    "start": "2026-01-01T00:00:00Z",\n'
        '    "end": "2026-01-02T00:00:00Z"\n'
        "  },\n"
        '  "items": [\n'
        "    {\n"
        '      "item_id": "sku-0002",\n'
        '      "count": 5\n'
        "    },\n"
        "    {\n"
        '      "item_id": "sku-0001",\n'
        '      "count": 3\n'
        "    }\n"
        "  ],\n"
        '  "build": {\n'
        '    "built_at": "2026-01-02T01:23:45Z",\n'
        f'    "version": "{version}",\n'
        f'    "source_hash": "{"f" * 64}"\n'
        "  }\n"
        "}"
    )
    assert artifact_bytes(artifact) == expected.encode()


def test_blob_version_recomputes_from_the_stored_bytes():
    """Parsing a stored blob and recomputing gives its build.version; built_at does not enter the hash."""
    first = artifact_bytes(_small_popularity())
    later = artifact_bytes(
        build_artifact("popularity", "demo", "home", START, END, json.loads(first)["items"], built_at=END)
    )
    assert first != later
    assert (
        artifact_version(json.loads(first))
        == artifact_version(json.loads(later))
        == json.loads(first)["build"]["version"]
    )
    assert "source_hash" not in json.loads(first)["build"]


def test_a_non_empty_segment_is_written_after_surface_and_changes_the_version():
    """segment appears between surface and window when set, and is part of the hashed content."""
    with_segment = _small_popularity(segment="vip")
    assert list(with_segment)[:6] == ["v", "artifact_type", "tenant", "surface", "segment", "window"]
    assert b'"surface": "home",\n  "segment": "vip",\n  "window"' in artifact_bytes(with_segment)
    assert with_segment["build"]["version"] != _small_popularity()["build"]["version"]
    assert artifact_version(json.loads(artifact_bytes(with_segment))) == with_segment["build"]["version"]


def test_cooc_artifact_uses_neighbors_rows_in_item_order():
    """Cooc payload: rows by item_id, neighbours by count desc then item_id, at most 50."""
    pairs = {"b": {"a": 1, "c": 1}, "a": {"b": 1, **{f"n{i:02d}": i for i in range(60)}}}
    rows = cooc_rows(pairs)
    assert [r["item_id"] for r in rows] == ["a", "b"]
    assert len(rows[0]["items"]) == 50 and rows[0]["items"][0] == {"item_id": "n59", "count": 59}
    assert rows[1]["items"] == [{"item_id": "a", "count": 1}, {"item_id": "c", "count": 1}]
    artifact = build_artifact("cooc", "demo", "home", START, END, rows, built_at=BUILT)
    assert list(artifact) == ["v", "artifact_type", "tenant", "surface", "window", "neighbors", "build"]


def test_popularity_items_order_by_count_then_item_id_and_cap_at_1000():
    """Popularity payload: count desc, ties by item_id asc, at most 1000 entries."""
    assert popularity_items({"b": 2, "a": 2, "c": 9}) == [
        {"item_id": "c", "count": 9},
        {"item_id": "a", "count": 2},
        {"item_id": "b", "count": 2},
    ]
    assert len(popularity_items({f"i{n}": n for n in range(1500)})) == 1000


def test_canonical_jsonb_sorts_keys_by_length_then_bytes():
    """Admin document text as PostgreSQL jsonb prints it: shorter keys first, ', ' and ': ' separators."""
    doc = {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "limits": {"max_k": 200}, "flags": {}, "algo": "é"}
    expected = '{"algo": "é", "flags": {}, "limits": {"max_k": 200}, "weights": {"emb": 0.0, "pop": 1.0, "cooc": 0.5}}'
    assert canonical_jsonb(doc) == expected
    assert doc_version(doc) == hashlib.sha256(expected.encode("utf-8")).hexdigest()
    # Length is counted in UTF-8 bytes: "é" (2 bytes) sorts after "b" and before "abc".
    assert canonical_jsonb({"abc": 1, "é": [1, "x"], "b": None}) == '{"b": null, "é": [1, "x"], "abc": 1}'


def test_times_are_utc_with_second_precision_and_z():
    """rfc3339 converts to UTC and drops the fraction; naive datetimes are refused."""
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-01-02T01:04:05Z"
    )
    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 1, 2))
    assert parse_time("2026-01-02T01:23:45.123456789Z") == datetime(2026, 1, 2, 1, 23, 45, 123456, tzinfo=UTC)
    assert day_window(date(2026, 1, 1)) == (START, END)


def test_go_json_escapes_html_characters_like_go():
    """Go's encoder escapes <, > and & inside strings; non-ASCII stays UTF-8."""
    assert go_json({"u": "a<b>&c", "n": "é"}, indent=False) == '{"u":"a\\u003cb\\u003e\\u0026c","n":"é"}'


@pytest.mark.parametrize("bad", ["", " demo", ".", "..", "../x", "a/b", "a\\b", "a\x00b", "\t"])
def test_safe_segment_rejects_names_that_could_escape_a_path(bad):
    """Tenant/surface must be plain, trimmed path segments."""
    with pytest.raises(UnsafeSegment):
        safe_segment(bad, "tenant")


def test_safe_segment_accepts_plain_names():
    """Ordinary names pass through unchanged."""
    assert safe_segment("demo") == "demo"
    assert safe_segment("home-2", "surface") == "home-2"


def test_check_artifact_accepts_a_good_blob_and_fires_on_a_tampered_one():
    """The validator passes an intact blob and names the hash mismatch of one whose items were edited."""
    artifact = _small_popularity()
    data = artifact_bytes(artifact)
    args = dict(kind="popularity", tenant="demo", surface="home", window_start=START, window_end=END)
    assert check_artifact(data, version=artifact["build"]["version"], **args)["items"][0]["count"] == 5
    tampered = data.replace(b'"count": 5', b'"count": 500')
    with pytest.raises(ArtifactInvalid, match="hashes to"):
        check_artifact(tampered, **args)
    with pytest.raises(ArtifactInvalid, match="artifact_type"):
        check_artifact(data, **{**args, "kind": "cooc"})
    with pytest.raises(ArtifactInvalid, match="window.start"):
        check_artifact(data, **{**args, "window_start": END})
    with pytest.raises(ArtifactInvalid, match="demo"):
        check_artifact(data, **{**args, "tenant": "acme"})
    with pytest.raises(ArtifactInvalid, match="not valid JSON"):
        check_artifact(data[:40], **args)


def test_check_artifact_enforces_limits_and_counts():
    """More than 1000 popularity items, more than 50 neighbours or a negative count is invalid."""
    args = dict(tenant="demo", surface="home")
    too_many = build_artifact(
        "popularity", "demo", "home", START, END, [{"item_id": f"i{n}", "count": 1} for n in range(1001)]
    )
    with pytest.raises(ArtifactInvalid, match="1001 items"):
        check_artifact(artifact_bytes(too_many), kind="popularity", **args)
    wide = build_artifact(
        "cooc",
        "demo",
        "home",
        START,
        END,
        [{"item_id": "a", "items": [{"item_id": f"n{n}", "count": 1} for n in range(51)]}],
    )
    with pytest.raises(ArtifactInvalid, match="51 neighbours"):
        check_artifact(artifact_bytes(wide), kind="cooc", **args)
    negative = build_artifact("popularity", "demo", "home", START, END, [{"item_id": "a", "count": -1}])
    with pytest.raises(ArtifactInvalid, match="non-negative"):
        check_artifact(artifact_bytes(negative), kind="popularity", **args)
    empty = build_artifact("popularity", "demo", "home", START, END, [])
    assert check_artifact(artifact_bytes(empty), kind="popularity", **args)["items"] == []
