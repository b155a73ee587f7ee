"""The pictures' reference and examples cannot drift from the code: every drawing step is in the reference table
under its picture, and every picture has example figure data from a drill that the current code draws."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handbook_site.macros import picture_section
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _table_rows() -> dict[str, str]:
    text = (ROOT / "docs" / "reference" / "checks.md").read_text(encoding="utf-8")
    return {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")
            and line.split("|")[1].strip() in pictures.KINDS}


def test_every_drawing_step_is_in_the_reference_row_of_its_picture():
    """DRAWN_BY (what the pages read) and the reference table say the same."""
    rows = _table_rows()
    assert set(rows) == set(pictures.KINDS)
    for function, kind in pictures.DRAWN_BY.items():
        assert f"`{function}`" in rows[kind], (function, kind)


@pytest.mark.parametrize("kind", pictures.KINDS)
def test_every_picture_has_an_example_from_a_drill_that_the_code_draws(kind):
    """docs/pictures/<kind>.json is figure data of that kind, and it draws."""
    figure = json.loads((ROOT / "docs" / "pictures" / f"{kind}.json").read_text(encoding="utf-8"))
    assert figure["figure"] == kind
    assert "<svg" in pictures.svg(figure)


def test_a_runbook_page_shows_the_pictures_its_steps_draw_and_no_other():
    """stale-manifest draws versions; eval-report-suspect draws the evaluation; service-not-ready draws nothing."""
    assert "**Versions**" in "\n".join(picture_section(load_spec("stale-manifest")))
    assert "**Evaluation**" in "\n".join(picture_section(load_spec("eval-report-suspect")))
    assert picture_section(load_spec("service-not-ready")) == []
