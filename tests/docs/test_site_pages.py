"""The pages the operational-reliability page points readers to exist, are in the navigation and are linked."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import specskit
import yaml

from handbook_site.symptoms import symptom_table

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RELIABILITY = DOCS / "explanation" / "operational-reliability.md"

# Every page the reliability explanation sends a reader to, under the title a reader looks for.
LINKED_PAGES = {
    "Runbook: Roll back config/rules": "how-to/runbooks/rollback-config-rules.md",
    "How-to: Roll back artifacts safely": "how-to/rollback-safely.md",
    "How-to: Roll back to a previous artifact version": "how-to/runbooks/rollback-manifest.md",
    "How-to: Run evaluation and make ship decisions": "how-to/run-eval-and-ship.md",
    "Interpreting results": "explanation/interpreting-results.md",
    "Troubleshoot evaluation: symptom → cause → fix": "how-to/troubleshoot-evaluation.md",
    "Start an incident (the full checklist)": "how-to/first-incident.md",
    "Runbook: Empty recs": "how-to/runbooks/empty-recs.md",
    "Runbook: Stale manifest (artifact mode)": "how-to/runbooks/stale-manifest.md",
    "Runbook: Stale artifacts": "how-to/runbooks/stale-artifacts.md",
    "Runbook: Pipeline failed": "how-to/runbooks/pipeline-failed.md",
    "Production readiness checklist": "reference/production-readiness.md",
    "Glossary": "reference/glossary.md",
}


@functools.cache
def _reliability_text() -> str:
    """The reliability page as the site shows it: its symptom table is the generated one (handbook_site/symptoms.py)."""
    return RELIABILITY.read_text().replace("{{ symptom_table() }}",
                                           symptom_table(RELIABILITY.relative_to(DOCS).as_posix(),
                                                         specskit.all_specs()))


def _nav_pages() -> set[str]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    nav = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)["nav"]
    found: set[str] = set()

    def walk(node):
        if isinstance(node, str):
            found.add(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(nav)
    return found


def _links(markdown: str, base: str) -> set[str]:
    """Targets of the relative Markdown links of a page, as paths under docs/ (anchors dropped)."""
    out = set()
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown):
        if "://" in target or target.startswith("#"):
            continue
        path = (Path(base) / target.split("#")[0]).as_posix()
        parts: list[str] = []
        for piece in path.split("/"):
            if piece == "..":
                parts.pop()
            elif piece not in (".", ""):
                parts.append(piece)
        out.add("/".join(parts))
    return out


@pytest.mark.parametrize("title", sorted(LINKED_PAGES))
def test_linked_page_exists_is_in_the_nav_and_is_linked_from_the_reliability_page(title):
    page = LINKED_PAGES[title]
    assert (DOCS / page).is_file(), f"{title}: {page} does not exist"
    assert page in _nav_pages(), f"{title}: {page} is not in the navigation"
    assert page in _links(_reliability_text(), "explanation"), f"{title}: not linked from {RELIABILITY.name}"


def test_a_runbook_page_is_two_clicks_from_the_home_page():
    """Home links to the first-incident checklist; every row of that checklist links to a runbook page."""
    home = (DOCS / "index.md").read_text()
    assert "explanation/operational-reliability.md#first-incident-checklist" in home
    text = _reliability_text()
    section = text.split("## First-incident checklist", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| You see")]
    assert rows
    for row in rows:
        runbooks = [t for t in _links(row, "explanation") if t.startswith("how-to/runbooks/")]
        assert runbooks, f"checklist row links no runbook page: {row[:80]}"
        for target in runbooks:
            assert (DOCS / target).is_file(), target


def test_the_home_page_links_the_glossary():
    assert "reference/glossary.md" in _links((DOCS / "index.md").read_text(), ".")
