"""The pictures' reference and examples cannot drift from the code: every drawing step is in the reference table
under its picture, and every picture has example figure data from a drill that the current code draws."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handbook_site.macros import RECEIVER_DRAWS, picture_section, pictures_table
from recsys_checks.judge import figures
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _table_rows() -> dict[str, str]:
    return {line.split("|")[1].strip(): line for line in pictures_table().splitlines() if line.startswith("| ")
            and line.split("|")[1].strip() in pictures.KINDS}


def test_every_drawing_step_is_in_the_reference_row_of_its_picture():
    """DRAWN_BY and SHOWS (what the pages read) are the reference table, whose figure data functions exist, and
    the reference page draws that table."""
    rows = _table_rows()
    assert set(rows) == set(pictures.KINDS)
    for function, kind in pictures.DRAWN_BY.items():
        assert f"`{function}`" in rows[kind], (function, kind)
    for kind, row in rows.items():
        assert pictures.SHOWS[kind] in row and callable(getattr(figures, f"{kind}_figure")), kind
    assert "{{ pictures_table() }}" in (ROOT / "docs" / "reference" / "checks.md").read_text(encoding="utf-8")


def test_the_receivers_own_picture_is_the_one_its_triage_draws():
    """The table names the receiver under the one picture its incident page draws (a staleness triage's ages)."""
    from recsys_checks.alerts.checks import FleetScan
    from recsys_checks.alerts.triage import Observed, judge

    scan = FleetScan(rows=[{"tenant": "demo", "surface": "home", "condition": "stale", "status": "fail",
                            "summary": "", "age_seconds": 72 * 3600}])
    drawn = judge("staleness", Observed(scan, {}, [], 0.1), kind_label=None,
                  max_probes=10).as_dict()["figure"]["figure"]
    assert set(RECEIVER_DRAWS) == {drawn} and "receiver" in _table_rows()[drawn]


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


def test_each_example_on_a_runbook_page_is_the_picture_its_caption_names():
    """Every example image a runbook page shows is, by its own id, the kind its caption names, drawn for each kind
    the runbook's steps draw."""
    from picturekit import pictures_in_html
    from specskit import all_specs

    for spec in all_specs():
        lines = picture_section(spec)
        captions = [line.split("**")[1].lower() for line in lines if line.startswith("**")]
        shown = [kind for kind, _ in pictures_in_html("\n".join(lines))]
        drawn = {k for s in spec.steps if (k := pictures.DRAWN_BY.get(s.function))}
        assert shown == captions and set(shown) == drawn, spec.id
