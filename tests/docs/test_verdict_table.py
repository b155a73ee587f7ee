"""Every verdict a runbook run can end with is explained where on-call reads it: the how-to's table and
`recsys-checks runbook run --help`, both drawn from the verdict rule's declaration."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from handbook_site.macros import verdict_table
from recsys_checks.cli.commands import main
from recsys_checks.runbooks.verdict import OK_VERDICTS, VERDICT_MEANINGS, VERDICTS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_how_to_includes_the_generated_verdict_table_once():
    """The how-to shows the generated table, and none written by hand."""
    text = (DOCS / "how-to" / "run-a-runbook.md").read_text()
    assert text.count("{{ verdict_table() }}") == 1
    assert "| verdict |" not in text


def test_the_verdict_table_has_a_row_for_every_verdict_with_its_exit_code():
    """inconclusive included: one row per verdict, 0 only for healthy and mitigated."""
    rows = verdict_table().splitlines()[2:]
    assert len(rows) == len(VERDICTS) == len(VERDICT_MEANINGS)
    for verdict, row in zip(VERDICTS, rows, strict=True):
        assert row.startswith(f"| `{verdict}` | `{0 if verdict in OK_VERDICTS else 1}` |")
    assert any(row.startswith("| `inconclusive` | `1` |") for row in rows)


def test_runbook_run_help_names_every_verdict():
    """`runbook run --help` names each verdict, inconclusive among those that exit 1."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["runbook", "run", "--help"])
    assert done.value.code == 0
    text = " ".join(out.getvalue().split())
    for verdict in VERDICTS:
        assert verdict in text, verdict
    assert "1 action-required, inconclusive, failed" in text
