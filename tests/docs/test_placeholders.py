"""No page of the built site and no generated notebook carries an unfilled {tenant} or {surface}: a placeholder is
either a template's own syntax or on a page that says to type your own values in its place (tests/placeholders.py).
Run records and what a run prints are checked by the drills (tests/runbooks/test_drills.py)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from placeholders import unfilled

from recsys_checks.runbooks.notebook import build
from recsys_checks.runbooks.spec import load_all

ROOT = Path(__file__).resolve().parents[2]


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_no_built_page_carries_an_unfilled_placeholder(built_site: Path):
    """Every HTML page of the site, as a reader sees its text."""
    found = {str(page.relative_to(built_site)): unfilled(_text(page)) for page in sorted(built_site.rglob("*.html"))}
    assert not {page: snippets for page, snippets in found.items() if snippets}


@pytest.mark.parametrize("spec", load_all(), ids=lambda s: s.id)
def test_no_generated_notebook_carries_an_unfilled_placeholder(spec):
    """The notebook as generated (and as committed): its commands' placeholders are declared as such."""
    built = build(spec)
    text = "\n".join("".join(cell.source) for cell in built.cells)
    assert not unfilled(text)
    committed = json.loads((ROOT / "notebooks" / f"{spec.id}.ipynb").read_text())
    assert not unfilled("\n".join("".join(cell["source"]) for cell in committed["cells"]))


def test_the_rule_fires_on_a_value_left_out_and_is_quiet_on_a_template():
    """A command with --tenant {tenant} in a message is unfilled; a manifest template or a quoted parameter is not."""
    assert unfilled("run `recsys-checks config history --tenant {tenant}` to see earlier versions")
    assert not unfilled("RECSYS_ARTIFACT_MANIFEST_TEMPLATE=s3://b/registry/current/{tenant}/{surface}/manifest.json")
    given = "recsys-stack publish --tenant {tenant} --surface {surface} --day {day}"
    assert not unfilled(f"the fix runs `{given}` for demo/home", [given])
    assert not unfilled("type it with your tenant and surface in place of {tenant} and {surface}: --tenant {tenant}")
