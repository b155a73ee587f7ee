"""Admin document versions: the canonical jsonb text, pinned by hand and shared with the local stack."""

from __future__ import annotations

import hashlib

import pytest

from recsys_checks.judge.serving.documents import canonical_jsonb, doc_version
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


# Number text as written in a document -> as PostgreSQL's jsonb prints it (numeric keeps the written scale).
NUMBER_CASES = [
    ("0.70", "0.70"), ("1.10", "1.10"), ("2.50", "2.50"), ("3.14159265358979323846", "3.14159265358979323846"),
    ("1E+2", "100"), ("1e2", "100"), ("-1.0E+1", "-10"), ("1.5e-3", "0.0015"), ("100e-2", "1.00"),
    ("0.000", "0.000"), ("-0.0", "0.0"), ("-0", "0"), ("1E-7", "0.0000001"), ("12345678901234567890",
                                                                           "12345678901234567890"),
]


@pytest.mark.parametrize("written,jsonb", NUMBER_CASES)
def test_numbers_read_from_the_service_keep_the_text_jsonb_prints(written, jsonb):
    """A document read as written (jsonio.loads_exact) gets jsonb's number text, in the checks and the stack."""
    from recsys_checks.core import jsonio
    from recsys_stack.formats import loads_document

    doc = jsonio.loads_exact(f'{{"weights": {{"pop": {written}}}}}')
    text = f'{{"weights": {{"pop": {jsonb}}}}}'
    assert canonical_jsonb(doc) == text
    assert stack_canonical_jsonb(loads_document(f'{{"weights": {{"pop": {written}}}}}')) == text


def test_a_document_is_written_back_with_its_numbers_as_read():
    """What the checks PUT back is the number text they read (0.70 is not sent as 0.7)."""
    from recsys_checks.core import jsonio

    doc = jsonio.loads_exact('{"weights": {"pop": 0.70, "cooc": 1E+2}, "algo": "x"}')
    assert jsonio.dumps(doc) == '{"weights": {"pop": 0.70, "cooc": 1E+2}, "algo": "x"}'
