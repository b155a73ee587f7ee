"""The symptom → runbook table, generated from the runbook specs (``{{ symptom_table() }}``).

Each spec lists what on-call sees under ``symptoms:``; this table is those lists, one row per runbook, with the
runbook to open and its first read-only check. It is the one symptom table of the site: the first-incident how-to
and the operational-reliability explanation both include it, so they cannot disagree, and a symptom added to a spec
shows up in both.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from recsys_checks.runbooks.spec import RunbookSpec, load_all

# Where the runbook pages are, relative to docs/.
RUNBOOK_PAGES = "how-to/runbooks"
# The order of the rows: the layers as an incident meets them (the user-facing service first).
LAYER_ORDER = ("serving", "pipelines", "evaluation")


def first_check(spec: RunbookSpec) -> str:
    """The command of the runbook's first read-only check, with the placeholders on-call fills in (T, S)."""
    for step in spec.steps:
        if step.role == "check" and step.command:
            return step.command.replace("{tenant}", "T").replace("{surface}", "S")
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def symptom_table(page: str = "index.md", specs: Iterable[RunbookSpec] | None = None) -> str:
    """The Markdown table for the page ``page`` (its path under docs/, for the links to the runbook pages)."""
    specs = list(load_all() if specs is None else specs)
    rank = {layer: i for i, layer in enumerate(LAYER_ORDER)}
    specs.sort(key=lambda s: rank.get(s.layer, len(LAYER_ORDER)))  # stable: the specs' order within a layer
    base = posixpath.relpath(RUNBOOK_PAGES, posixpath.dirname(page) or ".")
    rows = ["| You see | Runbook | First read-only check |", "|---|---|---|"]
    for spec in specs:
        seen = "<br>".join(_cell(s) for s in spec.symptoms)
        check = first_check(spec)
        rows.append(f"| {seen} | [{_cell(spec.title)}]({base}/{spec.id}.md) | "
                    f"{'`' + _cell(check) + '`' if check else ''} |")
    return "\n".join(rows)


def define_env(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook, registered from handbook_site/macros.py
    """Register ``{{ symptom_table() }}``: the table with links relative to the page that includes it."""

    def for_the_page() -> str:
        page = getattr(env, "page", None)
        return symptom_table(page.file.src_uri if page is not None else "index.md")

    env.macro(for_the_page, "symptom_table")
