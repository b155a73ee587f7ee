"""Admin document versions: the canonical jsonb text, pinned by hand and shared with the local stack."""

from __future__ import annotations

import hashlib

import pytest

from recsys_checks.configrules import canonical_jsonb, doc_version
from recsys_stack.formats import canonical_jsonb as stack_canonical_jsonb

CASES = [
    ({"weights": {"pop": 1.0, "emb": 0.0, "cooc": 0.5}, "algo": "blend"},
     '{"algo": "blend", "weights": {"emb": 0.0, "pop": 1.0, "cooc": 0.5}}'),
    ({"tiny": 1e-07, "huge": 1e20, "n": [1, 2.5]}, '{"n": [1, 2.5], "huge": 100000000000000000000, "tiny": 0.0000001}'),
    ({"é": "ü", "zz": None, "b": True}, '{"b": true, "zz": null, "é": "ü"}'),
    ([{"action": "block", "item_ids": ["sku-1"]}], '[{"action": "block", "item_ids": ["sku-1"]}]'),
]


@pytest.mark.parametrize("doc,text", CASES)
def test_canonical_text_is_jsonb_output(doc, text):
    """Keys by UTF-8 length then bytes, ', ' and ': ' separators, no exponents, non-ASCII kept."""
    assert canonical_jsonb(doc) == text
    assert doc_version(doc) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("doc,text", CASES)
def test_the_local_stack_versions_documents_the_same_way(doc, text):
    """The stack (the service's stand-in) and the checks agree, so versions seen in one match the other."""
    assert stack_canonical_jsonb(doc) == text
