"""The symptom → runbook table exists once: generated from the specs' ``symptoms:`` (handbook_site/symptoms.py) and
included by both pages that show it, the first-incident how-to and the operational-reliability explanation."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from pathlib import Path

import pytest
import specskit

from handbook_site import macros, symptoms
from handbook_site.symptoms import first_check, symptom_table

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("how-to/first-incident.md", "explanation/operational-reliability.md")
CALL = "{{ symptom_table() }}"


def _from_docs_root(table: str, page: str) -> str:
    """The table with each relative link written from docs/, so that tables of two pages can be compared."""
    def absolute(found: re.Match) -> str:
        return f"]({posixpath.normpath(posixpath.join(posixpath.dirname(page), found.group(1)))})"

    return re.sub(r"\]\(([^)#\s]+)\)", absolute, table)


@pytest.mark.parametrize("page", PAGES)
def test_the_page_includes_the_generated_table_and_has_none_of_its_own(page):
    text = (DOCS / page).read_text()
    assert text.count(CALL) == 1, f"{page} does not include {CALL} exactly once"
    assert "| You see |" not in text, f"{page} has a symptom table written by hand"


def test_both_pages_carry_the_same_table():
    tables = {page: _from_docs_root(symptom_table(page, specskit.all_specs()), page) for page in PAGES}
    assert len(set(tables.values())) == 1, tables


def test_the_table_is_every_symptom_of_every_spec_with_its_runbook_and_first_check():
    specs = specskit.all_specs()
    table = symptom_table("how-to/first-incident.md", specs)
    rows = table.splitlines()[2:]
    assert len(rows) == len(specs)
    for spec in specs:
        [row] = [r for r in rows if f"(runbooks/{spec.id}.md)" in r]
        for symptom in spec.symptoms:
            assert symptom.replace("|", "\\|") in row, f"{spec.id}: {symptom!r} missing from its row"
        assert first_check(spec) in row
        assert (DOCS / "how-to" / "runbooks" / f"{spec.id}.md").is_file()


def test_a_symptom_added_to_a_spec_shows_on_both_pages():
    specs = specskit.all_specs()
    changed = [dataclasses.replace(s, symptoms=(*s.symptoms, "nothing new was published"))
               if s.id == "stale-artifacts" else s for s in specs]
    for page in PAGES:
        assert "nothing new was published" in symptom_table(page, changed)
        assert "nothing new was published" not in symptom_table(page, specs)


def test_the_macro_is_registered_and_links_from_the_page_that_includes_it(monkeypatch):
    class Env:
        def __init__(self) -> None:
            self.macros: dict = {}
            self.page = None

        def macro(self, function, name: str = ""):
            self.macros[name or function.__name__] = function
            return function

    monkeypatch.setattr(symptoms, "load_all", lambda: list(specskit.all_specs()))  # the specs, parsed once
    env = Env()
    macros.define_env(env)
    for page in PAGES:
        env.page = type("Page", (), {"file": type("File", (), {"src_uri": page})()})()
        assert env.macros["symptom_table"]() == symptom_table(page, specskit.all_specs())


def _built_table(site: Path, page: str) -> str:
    """The symptom table of a built page, its links written from the site's root."""
    url = page.removesuffix(".md") + "/"
    html = (site / url / "index.html").read_text()
    [table] = [t for t in re.findall(r"<table>.*?</table>", html, re.S) if "You see" in t]

    def absolute(found: re.Match) -> str:
        return f'href="{posixpath.normpath(posixpath.join(url, found.group(1)))}/"'

    return re.sub(r'href="([^"#]+)/"', absolute, table)


def test_both_built_pages_show_the_same_table(built_site):
    first, second = (_built_table(built_site, page) for page in PAGES)
    assert first == second
    assert all(f'href="how-to/runbooks/{spec.id}/"' in first for spec in specskit.all_specs())


@pytest.mark.parametrize(("symptom", "runbook"), [
    ("fewer items than asked, or items that should not be there", "rollback-config-rules"),
    ("item pages (requests with anchors) fail", "service-not-ready"),
])
def test_the_checklist_has_a_line_for_what_clients_get_wrong(symptom, runbook):
    """Short or wrong answers, and failing item pages, each have a line on the checklist, opening the runbook that
    handles them (in that runbook's row, once)."""
    table = symptom_table("how-to/first-incident.md", specskit.all_specs())
    rows = [row for row in table.splitlines()[2:] if symptom in row]
    assert len(rows) == 1 and f"(runbooks/{runbook}.md)" in rows[0], rows
