"""Canonical jsonb text and versions, settings from the environment, and config/rules validation."""

from __future__ import annotations

import hashlib

import pytest

from recsys_stack.service.canonical import canonical_jsonb, doc_version
from recsys_stack.service.documents import InvalidDocument, parse_rules, validate_config
from recsys_stack.service.settings import Settings, parse_duration


def test_canonical_jsonb_sorts_keys_by_length_then_bytes():
    """Keys sort by UTF-8 length first, then bytewise; ', ' and ': ' separators; non-ASCII kept."""
    doc = {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0}, "algo": "ü", "b": [True, None, "x\n"], "aa": {}}
    assert (
        canonical_jsonb(doc)
        == '{"b": [true, null, "x\\n"], "aa": {}, "algo": "ü", "weights": {"emb": 0, "pop": 1.0, "cooc": 0.5}}'
    )
    assert doc_version(doc) == hashlib.sha256(canonical_jsonb(doc).encode()).hexdigest()
    assert canonical_jsonb({"é": 1, "z": 2}) == '{"z": 2, "é": 1}'  # é is two bytes in UTF-8


def test_canonical_jsonb_agrees_with_the_stack_formats_module():
    """The service's private implementation and recsys_stack.formats give the same versions."""
    formats = pytest.importorskip("recsys_stack.formats")
    for doc in (
        {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "flags": {"x": True}, "limits": {"max_k": 200}, "algo": "p"},
        [{"action": "pin", "target_type": "item", "item_ids": ["sku-0001"], "priority": 3}],
        [],
    ):
        assert doc_version(doc) == formats.doc_version(doc)


@pytest.mark.parametrize(
    ("text", "seconds"), [("1m", 60), ("30s", 30), ("600s", 600), ("1h30m", 5400), ("500ms", 0.5), ("45", 45)]
)
def test_parse_duration_reads_go_durations(text, seconds):
    """Go-style durations and bare seconds are accepted."""
    assert parse_duration(text) == pytest.approx(seconds)


def test_settings_from_env_reads_the_suite_variables(tmp_path):
    """Every documented variable is honoured; a malformed one names itself."""
    settings = Settings.from_env(
        {
            "RECSYS_STACK_DB": str(tmp_path / "a.db"),
            "RECSYS_API_KEY": "k",
            "RECSYS_ARTIFACT_MODE_ENABLED": "false",
            "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "file:///x/{tenant}/{surface}/manifest.json",
            "RECSYS_ARTIFACT_MANIFEST_TTL": "1m",
            "RECSYS_ARTIFACT_CACHE_TTL": "30s",
            "RECSYS_ARTIFACT_MAX_BYTES": "1234",
            "RECSYS_ARTIFACT_S3_ENDPOINT": "http://127.0.0.1:9000",
            "RECSYS_ARTIFACT_S3_ACCESS_KEY": "ak",
            "RECSYS_ARTIFACT_S3_SECRET_KEY": "sk",
            "RECSYS_ARTIFACT_S3_REGION": "eu-west-1",
            "RECSYS_ARTIFACT_S3_USE_SSL": "false",
        }
    )
    assert settings.db_path == tmp_path / "a.db" and settings.api_key == "k"
    assert settings.artifact_mode_enabled is False
    assert (settings.manifest_ttl_seconds, settings.cache_ttl_seconds, settings.max_bytes) == (60, 30, 1234)
    assert (settings.s3_endpoint, settings.s3_region, settings.s3_use_ssl) == (
        "http://127.0.0.1:9000",
        "eu-west-1",
        False,
    )
    assert "sk" not in repr(settings) and "'k'" not in repr(settings)
    with pytest.raises(ValueError, match="RECSYS_ARTIFACT_MANIFEST_TTL"):
        Settings.from_env({"RECSYS_ARTIFACT_MANIFEST_TTL": "soon"})
    defaults = Settings.from_env({})
    assert defaults.manifest_ttl_seconds == 60 and defaults.max_bytes == 10_000_000


def test_config_validation_accepts_the_documented_shape_and_names_bad_fields():
    """weights ≥ 0, flags object, limits.max_k 1..200, algo string; anything else is named in the error."""
    validate_config(
        {"weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "flags": {"a": 1}, "limits": {"max_k": 50}, "algo": "x"}
    )
    with pytest.raises(InvalidDocument, match="weights.cooc"):
        validate_config({"weights": {"cooc": -0.1}})
    with pytest.raises(InvalidDocument, match="max_k"):
        validate_config({"limits": {"max_k": 0}})


def test_rules_parse_targets_and_time_windows():
    """Rules parse with defaults (enabled, priority 0); a window in the past makes a rule inactive."""
    from datetime import UTC, datetime

    rules = parse_rules(
        [
            {"action": "pin", "target_type": "item", "target_key": "sku-0001"},
            {
                "action": "boost",
                "target_type": "tag",
                "target_key": "sale",
                "boost_value": 2.5,
                "valid_from": "2025-01-01T00:00:00Z",
                "valid_until": "2025-02-01T00:00:00Z",
            },
        ]
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert rules[0].item_ids == ("sku-0001",) and rules[0].active("home", "default", now)
    assert not rules[1].active("home", "default", now)
    with pytest.raises(InvalidDocument, match=r"rules\[0\].max_pins"):
        parse_rules([{"action": "pin", "item_ids": ["a"], "max_pins": 0}])


def test_artifacts_written_by_the_stack_formats_module_parse_in_the_service():
    """Blobs and manifests built by recsys_stack.formats are read by the service's independent parsers."""
    formats = pytest.importorskip("recsys_stack.formats")
    from recsys_stack.service.artifacts import parse_blob, parse_manifest

    items = formats.popularity_items({"sku-0002": 3, "sku-0001": 3, "sku-0003": 9})
    artifact = formats.build_artifact(
        "popularity", "demo", "home", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", items
    )
    blob = parse_blob(formats.artifact_bytes(artifact), "file:///b.json", "popularity", "demo", "home")
    assert blob.payload == [("sku-0003", 9), ("sku-0001", 3), ("sku-0002", 3)]
    manifest = formats.manifest_dict("demo", "home", {"popularity": "file:///b.json"}, "2026-01-02T01:00:00Z")
    parsed = parse_manifest(formats.manifest_bytes(manifest), "file:///m.json", "demo", "home")
    assert parsed.current == {"popularity": "file:///b.json"}


def test_a_blob_nested_past_the_parser_is_an_unusable_artifact_not_a_crash():
    """The service's blob reader and the publisher's check both refuse 50,000 nested arrays as not valid JSON."""
    from recsys_stack.formats import ArtifactInvalid, check_artifact
    from recsys_stack.service.artifacts import ArtifactIncompatible, parse_blob

    deep = b"[" * 50_000
    with pytest.raises(ArtifactIncompatible, match="not valid JSON"):
        parse_blob(deep, "file:///b.json", "popularity", "demo", "home")
    with pytest.raises(ArtifactInvalid, match="not valid JSON"):
        check_artifact(deep, kind="popularity", tenant="demo", surface="home")


def test_the_stack_catalog_has_the_metadata_rules_need():
    """recsys_stack.catalog provides tags, brand and category per item id, as tag/brand/category rules expect."""
    pytest.importorskip("recsys_stack.catalog")
    from recsys_stack.service.runtime import load_catalog

    catalog = load_catalog()
    assert catalog is not None and len(catalog) >= 100
    meta = catalog["sku-0001"]
    assert isinstance(meta["tags"], list) and isinstance(meta["brand"], str) and isinstance(meta["category"], str)
