"""Canonical text of an admin document, as PostgreSQL's jsonb prints it, and the version derived from it.

The suite stores config and rules in jsonb and versions them by the SHA-256 of the jsonb text, so the version of a
document does not depend on how the client spelled it: object keys are sorted by UTF-8 length, then bytewise;
separators are ``", "`` and ``": "``; non-ASCII characters are kept as they are.
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any


def _key(name: str) -> tuple[int, bytes]:
    raw = name.encode("utf-8")
    return (len(raw), raw)


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be stored in a JSON document: use a finite number")
    text = repr(value)
    if "e" in text or "E" in text:
        # jsonb's numeric never prints an exponent.
        text = format(Decimal(text), "f")
    return text


def canonical_jsonb(doc: Any) -> str:
    """Return the jsonb text of ``doc`` (keys by length then bytes, ``", "``/``": "`` separators)."""
    if doc is None:
        return "null"
    if doc is True:
        return "true"
    if doc is False:
        return "false"
    if isinstance(doc, (int, float)):
        return _number(doc)
    if isinstance(doc, str):
        return json.dumps(doc, ensure_ascii=False)
    if isinstance(doc, (list, tuple)):
        return "[" + ", ".join(canonical_jsonb(item) for item in doc) + "]"
    if isinstance(doc, dict):
        for name in doc:
            if not isinstance(name, str):
                raise TypeError(f"object key {name!r} is not a string: JSON documents only have string keys")
        parts = (
            json.dumps(name, ensure_ascii=False) + ": " + canonical_jsonb(doc[name]) for name in sorted(doc, key=_key)
        )
        return "{" + ", ".join(parts) + "}"
    raise TypeError(f"{type(doc).__name__} is not a JSON value")


def doc_version(doc: Any) -> str:
    """Version of an admin document: lowercase hex SHA-256 of its canonical jsonb text."""
    return hashlib.sha256(canonical_jsonb(doc).encode("utf-8")).hexdigest()
