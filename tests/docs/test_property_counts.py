"""The reliability page shows the generated incident tests' counts from their record, never typed by hand."""

from __future__ import annotations

import json
from pathlib import Path

from handbook_site.propertycounts import RECORD, incident_property_counts, read_record

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_shows_each_recorded_set(tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"seeded": {"examples": 30, "runbook_runs": 41, "incidents": {"rules": 7},
                                             "truths": {"healthy": 9}, "verdicts": {"mitigated": 12},
                                             "failures": 0, "failure": None, "set_aside_known_defects": 2}}))
    table = incident_property_counts(record)
    assert "| Seeded set (`make test`) | 30 | 41 | rules 7 | healthy 9 | mitigated 12 | 2 | 0 |" in table
    assert "| Random set (`make soak`) | not recorded |" in table


def test_a_missing_or_broken_record_shows_nothing_recorded(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    for path in (tmp_path / "none.json", tmp_path / "bad.json"):
        assert read_record(path) == {}
        assert incident_property_counts(path).count("not recorded") == 2


def test_the_reliability_page_draws_the_counts_from_the_record() -> None:
    page = (ROOT / "docs/reference/reliability.md").read_text()
    assert "{{ incident_property_counts() }}" in page
    assert RECORD.is_file() and isinstance(read_record(), dict)
