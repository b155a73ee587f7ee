"""The one secret rule: which environment variables hold credentials, and how their values are found and masked.

The credentials are those the service client and the S3 client may read: ``RECSYS_API_KEY``, the artifact store's
keys, and the AWS default credential chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_SECURITY_TOKEN``), plus any variable named in ``RECSYS_SECRET_VARIABLES`` (comma-separated). A value is found
and masked as written and in its common encodings (base64 in both alphabets, with or without padding, and wrapped at
76 columns as ``base64`` and MIME write it; URL-encoding, ``%20`` or ``+`` for a space; hex in either case), because
that is how a secret leaks through a command's output or a pasted header; and each of those as the outputs escape
it (a JSON string, ASCII or not; HTML entities; HTML of a JSON string), because a value holding ``" \\ < > &``
is written escaped and would not be found as written.

What writes masks before it encodes (:func:`mask_tree` on the document, then ``json.dumps`` or ``html.escape``), and
masks the encoded text again (:func:`mask`), which finds the escaped forms: neither alone is enough when one part
of a page comes from a document and another from a template.

Values shorter than :data:`MIN_SECRET` are not treated as secrets: a four-letter test key would mask ordinary words
in names and URIs. Everything that prints, records or refuses uses these functions, with the same threshold.

A configuration document (a recsys-eval report's ``effective_config``) carries secrets by the name of their key, not
by an environment variable: :func:`mask_document` masks the value of every key that :func:`secret_key` names
(``AccessKey``, ``SecretKey``, ``DSN``, passwords, tokens...) whatever its length, the password in any URL's user
information, and every credential of the environment, and returns the values it masked so that the same values can be
masked wherever else they appear (:func:`mask_tree`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

BASE_VARIABLES: tuple[str, ...] = (
    "RECSYS_API_KEY", "RECSYS_ARTIFACT_S3_ACCESS_KEY", "RECSYS_ARTIFACT_S3_SECRET_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
)
EXTRA_VARIABLE = "RECSYS_SECRET_VARIABLES"
MIN_SECRET = 8
MASK = "***"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def secret_variables(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The names of every credential variable: the base set and those listed in ``RECSYS_SECRET_VARIABLES``."""
    env = os.environ if env is None else env
    extra = [n.strip() for n in (env.get(EXTRA_VARIABLE) or "").split(",") if _NAME.match(n.strip())]
    return BASE_VARIABLES + tuple(n for n in extra if n not in BASE_VARIABLES)


def _encodings(value: str) -> set[str]:
    """``value`` as written and encoded: URL, hex, base64 (both alphabets, padded or not, wrapped at 76 columns)."""
    raw = value.encode("utf-8", "surrogatepass")
    out = {value, quote(value, safe=""), quote_plus(value, safe=""), binascii.hexlify(raw).decode(),
           binascii.hexlify(raw).decode().upper()}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out.update((encoded, encoded.rstrip("=")))
    wrapped = base64.encodebytes(raw).decode().rstrip("\n")  # base64(1) and MIME: a line break every 76 columns
    out.update((wrapped, wrapped.rstrip("=")))
    return out


def _escapes(text: str) -> set[str]:
    """``text`` as each output escapes it: a JSON string (ASCII or not), HTML, HTML of a JSON string."""
    out = {text}
    for ascii_only in (True, False):
        out.add(json.dumps(text, ensure_ascii=ascii_only)[1:-1])
    out |= {html.escape(t, quote=q) for t in list(out) for q in (True, False)}
    return out


def forms(value: str) -> set[str]:
    """``value`` as written, in the encodings it commonly leaks in, and each of those as the outputs escape it
    (JSON string, HTML); each at least MIN_SECRET long."""
    return set(_forms(value))


@functools.lru_cache(maxsize=512)
def _forms(value: str) -> frozenset[str]:
    out: set[str] = set()
    for encoded in _encodings(value):
        out |= _escapes(encoded)
    return frozenset(f for f in out if len(f) >= MIN_SECRET)


@functools.lru_cache(maxsize=64)
def _pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    """One expression finding every form of every value, the longest first (a form may contain a shorter one)."""
    found = set().union(*(_forms(v) for v in values)) if values else set()
    if not found:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(found, key=lambda f: (-len(f), f))))


def secret_values(env: Mapping[str, str] | None = None) -> dict[str, set[str]]:
    """Every set credential variable (of at least MIN_SECRET characters) and the forms of its value."""
    env = os.environ if env is None else env
    return {name: forms(env[name]) for name in secret_variables(env)
            if env.get(name) and len(env[name]) >= MIN_SECRET}


def find(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The names of the credential variables whose value, in any of its forms, appears in ``text``."""
    return [name for name, values in secret_values(env).items() if any(v in text for v in values)]


def mask(text: str, env: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every form of every credential (and of each value in ``extra``) replaced by ``***``."""
    pattern = _masker(env, extra)
    return pattern.sub(MASK, text) if pattern is not None else text


def _masker(env: Mapping[str, str] | None, extra: Iterable[str | None]) -> re.Pattern[str] | None:
    """The expression that finds every credential of ``env`` and each of ``extra`` (None: there is none)."""
    env = os.environ if env is None else env
    values = {env[n] for n in secret_variables(env) if env.get(n) and len(env[n]) >= MIN_SECRET}
    values |= {v for v in extra if v and len(v) >= MIN_SECRET}
    return _pattern(frozenset(values))


# Config keys whose value is a credential, by name: Go field names (AccessKey, SecretKey, DSN), YAML names
# (access_key, secret_key, dsn) and the usual others. Compared without case, "_" and "-".
_SECRET_KEY = re.compile(r"(accesskey|secretkey|secret|password|passwd|pwd|token|dsn|credential|apikey|privatekey|"
                         r"sessionkey|connectionstring)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?=@)")


def secret_key(name: str) -> bool:
    """Whether a configuration key names a credential (``AccessKey``, ``secret_key``, ``DSN``, ``db-password``...)."""
    return bool(_SECRET_KEY.search(re.sub(r"[_\-\s]", "", name)))


def _mask_urls(text: str, found: set[str]) -> str:
    def hide(match: re.Match[str]) -> str:
        found.add(match.group("password"))
        return match.group("head") + MASK
    return _URL_PASSWORD.sub(hide, text)


def mask_document(doc: Any, env: Mapping[str, str] | None = None) -> tuple[Any, set[str]]:
    """A copy of a JSON-like document with every secret masked, and the set of values that were masked.

    The value of a key :func:`secret_key` names is replaced by ``***`` when it is a non-empty string (an empty one
    stays empty: nothing was configured); a URL's password is masked wherever it is; then :func:`mask`.
    """
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, secret or (isinstance(k, str) and secret_key(k))) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, secret) for v in value]
        if isinstance(value, str):
            if secret and value:
                found.add(value)
                return MASK
            return _mask_urls(value, found)
        return value

    masked = walk(doc, False)
    return mask_tree(masked, env, found), found


def mask_tree(value: Any, env: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> Any:
    """Every string in a JSON-like value (keys too) passed through :func:`mask` with ``extra`` (values shorter than
    :data:`MIN_SECRET` are not looked for elsewhere, as for the environment); URL passwords masked."""
    pattern = _masker(env, [e for e in extra if e])
    ignored: set[str] = set()

    def text(item: str) -> str:
        item = _mask_urls(item, ignored) if "://" in item else item
        return pattern.sub(MASK, item) if pattern is not None else item

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {text(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        if isinstance(item, str):
            return text(item)
        return item

    return walk(value)
