"""Reading JSON from peers and stores without crashing on damaged input.

A document nested deeper than the interpreter can parse is refused as invalid (a ``ValueError``), so that a damaged
manifest is a finding that still lets a repair be planned, rather than an internal error.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from recsys_checks.core.errors import BadInput


def loads(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` that raises ``ValueError`` (not ``RecursionError``) for absurdly nested documents."""
    try:
        if not kwargs and data.__class__ is bytes and data[:1] == b"{" and data[1:2] != b"\x00":
            # What json.loads does for these bytes (its encoding guess can only be UTF-8 here), without the guess:
            # a fleet scan parses thousands of small documents.
            return _decode(data.decode("utf-8", "surrogatepass"))
        return json.loads(data, **kwargs)
    except RecursionError:
        raise ValueError("JSON nested too deeply to be a document of the suite") from None


_decode = json.JSONDecoder().decode


def load_object(data: str | bytes, what: str) -> dict[str, Any]:
    """The JSON object ``data`` holds, or :class:`~recsys_checks.core.errors.BadInput` naming ``what`` (``"manifest"``,
    ``"hold marker"``, ...) and why it is not one: not JSON, nested too deeply, not an object."""
    try:
        doc = loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what} is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{what} is not a JSON object")
    return doc


def loads_exact(data: str | bytes) -> Any:
    """Parse keeping every non-integer number as the :class:`~decimal.Decimal` of its text (``0.70`` stays
    ``0.70``), as the suite's jsonb keeps it; see :func:`dumps` to write it back unchanged."""
    return loads(data, parse_float=Decimal)


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes each :class:`~decimal.Decimal` as its number text, unquoted.

    Format twin of ``recsys_stack.formats.dumps_document``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    numbers: list[str] = []
    import secrets  # imported when used: reading, the common case, does not need it

    marker = "\x00" + secrets.token_hex(8) + ":"

    def swap(v: Any) -> Any:
        if isinstance(v, Decimal):
            numbers.append(str(v))
            return f"{marker}{len(numbers) - 1}\x00"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), **kwargs)
    if not numbers:
        return text
    quoted = re.escape(json.dumps(marker)[:-1]) + r"(\d+)\\u0000\""
    return re.sub(quoted, lambda m: numbers[int(m.group(1))], text)
