"""The one secret rule: which environment variables hold credentials, and how their values are found and masked.

The credentials are those the service client and the S3 client may read: ``RECSYS_API_KEY``, the artifact store's
keys, and the AWS default credential chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_SECURITY_TOKEN``), plus any variable named in ``RECSYS_SECRET_VARIABLES`` (comma-separated). A value is found
and masked as written and in its common encodings (base64 in both alphabets, with or without padding; URL-encoding;
hex in either case), because that is how a secret leaks through a command's output or a pasted header.

Values shorter than :data:`MIN_SECRET` are not treated as secrets: a four-letter test key would mask ordinary words
in names and URIs. Everything that prints, records or refuses uses these functions, with the same threshold.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

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


def forms(value: str) -> set[str]:
    """``value`` as written and in the encodings it commonly leaks in (each at least MIN_SECRET long)."""
    raw = value.encode("utf-8", "surrogatepass")
    out = {value, quote(value, safe=""), binascii.hexlify(raw).decode(), binascii.hexlify(raw).decode().upper()}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out.update((encoded, encoded.rstrip("=")))
    return {f for f in out if len(f) >= MIN_SECRET}


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
    values: set[str] = set()
    for found in secret_values(env).values():
        values |= found
    for value in extra:
        if value and len(value) >= MIN_SECRET:
            values |= forms(value)
    for value in sorted(values, key=len, reverse=True):  # longest first: a form may contain a shorter one
        text = text.replace(value, MASK)
    return text
