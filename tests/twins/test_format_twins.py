"""The format twins: recsys_checks and recsys_stack each write or judge the suite's formats with their own code, on
purpose, so that each side cross-checks the other (a bug shared by both would pass every drill). These tests feed
both twins of each pair the same corpus and require the same answers; each twin's docstring names the other.

Generic helpers (creating a folder, say) are not twins: the stack takes those from recsys_checks.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from recsys_checks.core.jsonio import dumps
from recsys_checks.judge.registry import artifact as checks_artifact
from recsys_checks.judge.serving.documents import canonical_jsonb, doc_version
from recsys_checks.reach.settings import safe_segment
from recsys_checks.reach.store.base import etag_of
from recsys_stack import formats, objstore

DOCUMENTS = [
    {}, [], {"a": 1}, {"weight": Decimal("1.50")}, {"n": Decimal("1e400"), "m": [Decimal("-0.0"), 2, "x"]},
    {"é": "ü\u2028", "nested": {"list": [True, False, None, Decimal("3.14159265358979323846")]}},
    ["a", Decimal("0.1"), {"k": Decimal("10.000")}], {"rules": [{"id": "r1", "boost": Decimal("0.25")}]},
]


@pytest.mark.parametrize("doc", DOCUMENTS, ids=range(len(DOCUMENTS)))
@pytest.mark.parametrize("kwargs", [{}, {"indent": 2}, {"sort_keys": True}, {"separators": (",", ":")}],
                         ids=["plain", "indent", "sorted", "compact"])
def test_jsonio_dumps_and_dumps_document_write_the_same_text(doc, kwargs):
    assert dumps(doc, **kwargs) == formats.dumps_document(doc, **kwargs)


@pytest.mark.parametrize("doc", DOCUMENTS, ids=range(len(DOCUMENTS)))
def test_both_sides_give_a_document_the_same_canonical_text_and_version(doc):
    assert canonical_jsonb(doc) == formats.canonical_jsonb(doc)
    assert doc_version(doc) == formats.doc_version(doc)


@pytest.mark.parametrize("data", [b"", b"{}", b"\x00" * 1000, "é".encode(), dumps(DOCUMENTS).encode()])
def test_both_stores_give_the_same_etag(data):
    assert etag_of(data) == objstore.etag_of(data)


def test_both_sides_know_the_same_artifact_kinds():
    assert checks_artifact.KINDS == formats.ARTIFACT_KINDS


SEGMENTS = ["demo", "home", "a-b_c.1", "", ".", "..", "../x", "a/b", "a\\b", "x" * 200, "caf\u00e9", " home", "h\x00",
            "HOME", "-x", "_x"]


@pytest.mark.parametrize("value", SEGMENTS)
def test_both_sides_accept_and_refuse_the_same_tenant_and_surface_names(value):
    def accepted(fn) -> bool:
        try:
            fn(value, "tenant")
        except Exception:  # noqa: BLE001 - each side raises its own error type; only the answer is compared
            return False
        return True

    assert accepted(safe_segment) == accepted(formats.safe_segment)


def _popularity(**changes):
    doc = formats.build_artifact("popularity", "demo", "home", "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z",
                                 formats.popularity_items({f"item-{i}": 100 - i for i in range(30)}))
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        if value is _DROP:
            del node[leaf]
        else:
            node[leaf] = value
    return doc


_DROP = object()


def _rehashed(doc):
    doc = copy.deepcopy(doc)
    doc["build"]["version"] = formats.artifact_version(doc)
    return doc


BLOBS = {
    "valid": _popularity(),
    "v 2": _rehashed(_popularity(v=2)),
    "v true": _rehashed(_popularity(v=True)),
    "another kind": _rehashed(_popularity(artifact_type="cooc")),
    "another tenant": _rehashed(_popularity(tenant="other")),
    "another surface": _rehashed(_popularity(surface="search")),
    "no window": _rehashed(_popularity(window=_DROP)),
    "window not strings": _rehashed(_popularity(window={"start": 1, "end": 2})),
    "items not a list": _rehashed(_popularity(items={"a": 1})),
    "a negative count": _rehashed(_popularity(items=[{"item_id": "a", "count": -1}])),
    "a count that is a bool": _rehashed(_popularity(items=[{"item_id": "a", "count": True}])),
    "an empty item id": _rehashed(_popularity(items=[{"item_id": "", "count": 3}])),
    "an item that is no object": _rehashed(_popularity(items=["a"])),
    "too many items": _rehashed(_popularity(items=[{"item_id": f"i{n}", "count": 1} for n in range(1001)])),
    "a stale version": _popularity(items=[{"item_id": "a", "count": 3}]),
    "a version that is no hash": _popularity(build={"built_at": "2026-12-02T01:00:00Z", "version": "x",
                                                     "source_hash": ""}),
}


def _checks_accepts(data: bytes) -> bool:
    problems, _, _ = checks_artifact.inspect_artifact(data, tenant="demo", surface="home", kind="popularity",
                                                      window=("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"))
    return not problems


def _stack_accepts(data: bytes) -> bool:
    try:
        formats.check_artifact(data, kind="popularity", tenant="demo", surface="home",
                               window_start="2026-12-01T00:00:00Z", window_end="2026-12-02T00:00:00Z")
    except formats.ArtifactInvalid:
        return False
    return True


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_both_blob_validators_accept_and_refuse_the_same_blobs(name):
    data = formats.artifact_bytes(BLOBS[name])
    assert _checks_accepts(data) == _stack_accepts(data) == (name == "valid")


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"null", b"{\"v\": 1", "\ufeff{}".encode()])
def test_both_blob_validators_refuse_what_is_not_an_artifact(raw):
    assert not _checks_accepts(raw) and not _stack_accepts(raw)


# The version is defined for a blob whose payload is its kind's: popularity blobs with a list of items.
VERSIONED = sorted(n for n, d in BLOBS.items() if isinstance(d.get("items"), list) and d.get("artifact_type") == "popularity")


@pytest.mark.parametrize("name", VERSIONED)
def test_both_sides_compute_the_same_artifact_version(name):
    doc = BLOBS[name]
    data = formats.artifact_bytes(doc)
    assert checks_artifact.artifact_version(json.loads(data)) == formats.artifact_version(doc)
