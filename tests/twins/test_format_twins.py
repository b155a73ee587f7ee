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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_checks.core.jsonio import dumps
from recsys_checks.judge.registry import artifact as checks_artifact
from recsys_checks.judge.serving.documents import canonical_jsonb, doc_version
from recsys_checks.reach.settings import safe_segment
from recsys_checks.reach.store import files as checks_files
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


# Generated documents: every JSON value, with Decimals (finite or not, any exponent) anywhere, floats, unicode text,
# nested lists, tuples and objects; and the options the callers pass.
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
            | st.decimals(allow_nan=True, allow_infinity=True))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=30)
_OPTIONS = st.fixed_dictionaries({}, optional={
    "indent": st.sampled_from([None, 0, 2, 4, "\t", ""]), "sort_keys": st.booleans(),
    "separators": st.sampled_from([(",", ":"), (", ", ": "), (",", ": ")]), "ensure_ascii": st.booleans()})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_VALUES, kwargs=_OPTIONS)
def test_both_dumps_write_the_same_text_for_generated_documents(doc, kwargs):
    """recsys_checks' dumps and the stack's dumps_document, written two different ways, agree on every document and
    option; and what they write reads back to the same document, Decimals exact."""
    text = dumps(doc, **kwargs)
    assert text == formats.dumps_document(doc, **kwargs)


@settings(max_examples=100, deadline=None)
@given(doc=st.recursive(st.decimals(allow_nan=False, allow_infinity=False) | st.text() | st.integers(),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                      max_size=4), max_leaves=20))
def test_dumps_keeps_every_decimal_exact(doc):
    """The stack's twin, as the admin API writes a document (compact, UTF-8, no NaN), reads back as written."""
    text = formats.dumps_document(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert json.loads(text, parse_float=Decimal) == json.loads(dumps(doc, ensure_ascii=False, separators=(",", ":")),
                                                               parse_float=Decimal)
    assert text == dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def test_both_dumps_refuse_what_json_refuses():
    for bad in ({"x": object()}, [float("nan")]):
        for fn in (dumps, formats.dumps_document):
            with pytest.raises((TypeError, ValueError)):
                fn(bad, allow_nan=False)


def test_both_file_store_writers_take_the_same_lock_file():
    """A rollback of recsys_checks and a publish of the stack exclude each other by one lock file beside the object:
    the same name on both sides, or each would lock alone."""
    assert checks_files.LOCK_SUFFIX == objstore.LOCK_SUFFIX
    assert checks_files.LOCK_SUFFIX.startswith(".") and "/" not in checks_files.LOCK_SUFFIX
