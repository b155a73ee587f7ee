"""Placeholders left unfilled: a ``{tenant}`` or ``{surface}`` where a reader needs the value.

A placeholder is the syntax itself in a template (a manifest template, a path or route with ``/{tenant}/``, a
parameter that takes a template): those are allowed. Anywhere else it is a value that was never filled in, unless
the text says that it uses placeholders (a how-to's "with your tenant and surface in place of {tenant} and
{surface}"), in which case a reader knows to put theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\{(?:tenant|surface)\}")
# The syntax of a template: a path segment or a file name (`/{tenant}/`, `/{surface}.json`, `tenants/{tenant}`).
_IN_TEMPLATE = re.compile(r"/\{(?:tenant|surface)\}(?=[/.\s\"'`),;:]|$)")
# A text that declares its placeholders: where it does, the reader knows to put their own values.
DECLARED = ("in place of {tenant}", "{tenant} and {surface} are filled in", "{tenant}, {surface} and {day} filled in",
            "fills its {tenant} and {surface}", "containing {tenant} and {surface}")


def unfilled(text: str, templates: Iterable[str] = ()) -> list[str]:
    """The snippets of ``text`` around each placeholder that is neither a template's own syntax nor part of one of
    ``templates`` (template values the text quotes, e.g. a run's parameters), when ``text`` does not declare its
    placeholders."""
    if any(d in text for d in DECLARED):
        return []
    for template in sorted(templates, key=len, reverse=True):
        if template and PLACEHOLDER.search(template):
            text = text.replace(template, "")
    text = _IN_TEMPLATE.sub("/", text)
    return [text[max(m.start() - 60, 0):m.end() + 30] for m in PLACEHOLDER.finditer(text)]


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON document, with its path (``steps[2].result.summary``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from strings(item, f"{path}[{n}]")
    elif isinstance(value, str):
        yield path, value


def unfilled_in_record(record: dict[str, Any]) -> list[str]:
    """The unfilled placeholders of a run record: its parameters and the manifest template are templates (what the
    operator gave), and so is any string that quotes them; every other string must carry real values."""
    templates = [v for _, v in strings(record.get("parameters") or {})]
    templates += [v for _, v in strings(record.get("target") or {})]
    found = []
    for path, value in strings(record):
        if path.startswith(("parameters", "target")):
            continue
        found += [f"{path}: {snippet}" for snippet in unfilled(value, templates)]
    return found
