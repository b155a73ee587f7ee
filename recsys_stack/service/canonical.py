"""Canonical text of an admin document, as PostgreSQL's jsonb prints it, and the version derived from it.

The suite stores config and rules in jsonb and versions them by the SHA-256 of the jsonb text, so the version of a
document does not depend on how the client spelled it. One implementation serves the whole stack:
:func:`recsys_stack.formats.canonical_jsonb`.
"""

from __future__ import annotations

from ..formats import canonical_jsonb, doc_version

__all__ = ["canonical_jsonb", "doc_version"]
