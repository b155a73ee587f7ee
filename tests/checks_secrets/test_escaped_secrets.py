"""A credential holding characters that JSON or HTML escape (``" \\ < > &``) is masked in every form the outputs write
it: the escapes and encodings below are the test's own, written apart from the rule under test."""

from __future__ import annotations

import base64
import binascii
import html
import json
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_checks.core.credentials import MASK, mask, mask_tree

CANARY = 'Cnry"Api\\Key<9>&zz'
SECRETS = st.text(alphabet=st.sampled_from('abcXYZ019"\\<>&\'/+= %é\t'), min_size=8, max_size=70).filter(
    lambda s: s.strip() == s and len(set(s)) > 3)
AROUND = st.text(alphabet=st.sampled_from("ab \n:"), max_size=8)


def _escaped(text: str) -> list[str]:
    """How the outputs write a text: a JSON string (ASCII or not), HTML (quotes or not), HTML of a JSON string."""
    as_json = [json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]
    return [text, *as_json, html.escape(text), html.escape(text, quote=False), *(html.escape(j) for j in as_json)]


def _encoded(secret: str) -> list[str]:
    """The value encoded as a command or a header would carry it."""
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode(), base64.encodebytes(raw).decode().rstrip("\n"),
            quote(secret, safe=""), quote_plus(secret, safe=""), binascii.hexlify(raw).decode(),
            binascii.hexlify(raw).decode().upper()]


def _all_forms(secret: str) -> set[str]:
    return {e for encoded in _encoded(secret) for e in _escaped(encoded)}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=SECRETS, before=AROUND, after=AROUND, pick=st.integers(0, 1000))
def test_every_escaped_and_encoded_form_of_a_secret_is_masked_in_written_text(secret, before, after, pick):
    """Whatever the secret holds, each encoding of it, written as a JSON string or HTML, is masked in the text."""
    env = {"RECSYS_SECRET_VARIABLES": "VAULT_PASS", "VAULT_PASS": secret}
    encoded = _encoded(secret)[pick % len(_encoded(secret))]
    for written in _escaped(f"{before}{encoded}{after}"):
        out = mask(written, env)
        assert not any(form in out for form in _all_forms(secret)), (written, out)
        assert MASK in out


@settings(max_examples=80, deadline=None)
@given(secret=SECRETS, label=AROUND)
def test_a_document_masked_before_encoding_carries_no_form_of_the_secret(secret, label):
    """mask_tree first, then JSON and HTML: neither output holds the secret in any form."""
    env = {"RECSYS_API_KEY": secret}
    doc = {"labels": {"note": f"{label}{secret}{label}"}, "rows": [{"reason": f"key {secret}"}]}
    masked = mask_tree(doc, env)
    for out in (json.dumps(masked), json.dumps(masked, ensure_ascii=False, indent=2),
                html.escape(json.dumps(masked))):
        assert not any(form in out for form in _all_forms(secret))


def test_the_escaped_canary_is_masked_in_json_and_html():
    """The canary of the end-to-end test, escaped as JSON (``Cnry\\"Api\\\\Key<9>&zz``) and as HTML."""
    env = {"RECSYS_API_KEY": CANARY}
    for written in (json.dumps({"k": CANARY}), html.escape(CANARY), html.escape(json.dumps(CANARY))):
        assert "Cnry" not in mask(written, env)


def test_masking_leaves_text_without_a_secret_alone():
    """Quiet: the escapes of other text are not touched."""
    env = {"RECSYS_API_KEY": CANARY}
    text = json.dumps({"note": "a <b> & \"c\" \\ d"}) + html.escape("<x>&")
    assert mask(text, env) == text
