"""Manifest v1: strict parsing and the suite's byte format."""

from __future__ import annotations

import json

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.judge import auditlog
from recsys_checks.judge.registry import artifact, history, manifest, version_records
from recsys_checks.levers import rollback
from recsys_checks.reach.settings import Target


def _doc(**over):
    doc = {
        "v": 1,
        "tenant": "demo",
        "surface": "home",
        "current": {"popularity": "file:///x/objectstore/demo/home/popularity/a.json"},
        "updated_at": "2026-01-02T01:23:45Z",
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_suite_manifest_round_trips_byte_identical(file_registry):
    """A manifest written by the suite parses and re-serialises to exactly the same bytes."""
    raw = file_registry.read("registry/current/demo/home/manifest.json")
    assert manifest.manifest_bytes(manifest.parse_manifest(raw)) == raw


def test_manifest_bytes_sorts_current_and_has_no_trailing_newline():
    """Current keys are sorted, indentation is two spaces and there is no trailing newline."""
    m = manifest.Manifest(1, "demo", "home", {"popularity": "s3://b/p.json", "cooc": "s3://b/c.json"}, "2026-01-02T01:23:45Z")
    text = manifest.manifest_bytes(m).decode()
    assert text == (
        '{\n  "v": 1,\n  "tenant": "demo",\n  "surface": "home",\n  "current": {\n'
        '    "cooc": "s3://b/c.json",\n    "popularity": "s3://b/p.json"\n  },\n'
        '  "updated_at": "2026-01-02T01:23:45Z"\n}'
    )


def test_manifest_bytes_escapes_html_characters_like_go():
    """Go's encoder writes <, > and & as \\u escapes; so do we."""
    m = manifest.Manifest(1, "demo", "home", {"popularity": "s3://b/p.json?a=1&b=<2>"}, "2026-01-02T01:23:45Z")
    assert b"\\u0026b=\\u003c2\\u003e" in manifest.manifest_bytes(m)


def test_manifest_bytes_of_empty_current_is_an_empty_object():
    """An empty current map is written as {} as Go writes an empty map."""
    assert b'"current": {},' in manifest.manifest_bytes(manifest.Manifest(1, "demo", "home", {}, "2026-01-02T01:23:45Z"))


@pytest.mark.parametrize(
    ("data", "names"),
    [
        (_doc(extra=1), "extra"),
        (_doc(v=2), "'v'"),
        (_doc(v="1"), "'v'"),
        (_doc(v=True), "'v'"),
        (_doc(v=1.0), "'v'"),
        (_doc(updated_at="2026-13-02T01:23:45Z"), "updated_at"),
        (_doc(updated_at="yesterday"), "updated_at"),
        (_doc(current={"popularity": "https://x/p.json"}), "current.popularity"),
        (_doc(current=[]), "current"),
        (_doc(tenant="../x"), "tenant"),
        (_doc(surface="a/b"), "surface"),
        (_doc(tenant=" demo"), "tenant"),
        (json.dumps({"v": 1, "tenant": "demo", "surface": "home", "current": {}}).encode(), "updated_at"),
        (b"{not json", "JSON"),
        (b"[]", "object"),
    ],
)
def test_parse_manifest_rejects_anything_but_strict_v1(data, names):
    """Extra fields, v other than the integer 1, bad times, unknown kinds, unsafe names: BadInput naming the field."""
    with pytest.raises(BadInput) as exc:
        manifest.parse_manifest(data)
    assert names in str(exc.value)


@pytest.mark.parametrize(("data", "words"), [
    (_doc(updated_at="2026-01-02T01:23:45.5Z"), "not UTC with Z as the suite writes it"),
    (_doc(updated_at="2026-01-02T03:23:45+02:00"), "read as 2026-01-02T01:23:45Z"),
    (_doc(current={"popularity": "s3://b/p.json", "embeddings": "s3://b/e.json"}), "kind 'embeddings'"),
])
def test_a_deviation_the_service_tolerates_is_read_and_said_never_refused(data, words):
    """Off the suite's contract but served the same (an offset, a fraction, a kind the service ignores): the manifest
    reads, with a deviation that says what is off and that clients are not affected; the unknown kind kept apart."""
    m = manifest.parse_manifest(data)
    assert any(words in d and "clients are not affected" in d for d in m.deviations), m.deviations
    assert set(m.current) <= set(manifest.KINDS) and m.updated_at_dt.utcoffset().total_seconds() == 0


def test_parse_manifest_accepts_a_valid_v1():
    """A valid manifest parses (quiet case of the strict parser)."""
    m = manifest.parse_manifest(_doc())
    assert (m.v, m.tenant, m.surface, m.updated_at) == (1, "demo", "home", "2026-01-02T01:23:45Z")


def _no_store(*_a, **_k):
    raise AssertionError("the store was reached with an unsafe name")


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "a\\b", "", " demo", "x\n"])
@pytest.mark.parametrize(
    "call",
    [
        lambda t, bad: manifest.check_manifest(t, bad, "home"),
        lambda t, bad: manifest.check_manifest(t, "demo", bad),
        lambda t, bad: history.check_manifest_history(t, bad, "home"),
        lambda t, bad: version_records.version_history(t, "demo", bad),
        lambda t, bad: rollback.plan_rollback(t, bad, "home", previous=True),
        lambda t, bad: auditlog.read_audit(t, bad, "home"),
        lambda t, bad: manifest.read_current(t, bad, "home"),
        lambda t, bad: artifact.validate_artifact(t, "file:///x.json", tenant=bad, surface="home", kind="popularity"),
    ],
)
def test_unsafe_tenant_or_surface_is_rejected_before_any_path_is_built(monkeypatch, tmp_path, call, bad):
    """'../x' and friends raise BadInput without touching the store."""
    from recsys_checks.reach import store

    for cls in (store.FileStore, store.S3Store):
        for name in ("get", "put", "list", "exists", "children"):
            monkeypatch.setattr(cls, name, _no_store)
    target = Target(manifest_template=tmp_path.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    with pytest.raises(BadInput):
        call(target, bad)
    assert list(tmp_path.iterdir()) == []


def test_fleet_rejects_an_unsafe_tenant_before_listing(tmp_path):
    """check_freshness with tenant '../x' raises BadInput."""
    from recsys_checks.judge.registry.freshness import check_freshness

    target = Target(manifest_template=tmp_path.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")
    with pytest.raises(BadInput):
        check_freshness(target, tenant="../x")
