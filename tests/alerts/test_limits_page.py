"""The Limits table of the receiver's reference page against the constants of the code, both ways: every limit the
table names is the code's value, and every row is one the code has (a changed constant or a drifted row fails)."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from recsys_checks.alerts import checks, guard, notify, payload, web

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "alert-receiver.md"


def expected() -> dict[str, list[str]]:
    """Per row of the table, the texts its value must hold, made from the code's constants."""
    mib = 1024 * 1024
    return {
        "request headers": [f"within {guard.HEADER_TIMEOUT:g} s"],
        "connections waiting for their headers": [f"{guard.PER_ADDRESS} per client address",
                                                  f"{guard.PENDING:,} in all"],
        "open connections": [f"{guard.MAX_CONNECTIONS:,}"],
        "webhook body": [f"arriving within {web.BODY_TIMEOUT:g} s"],
        "nesting": [f"{payload.MAX_DEPTH} deep"],
        "one alert": [f"{payload.MAX_ALERT_BYTES // mib} MiB", f"{payload.MAX_ALERTS:,} per delivery",
                      f"{payload.MAX_LABELS} labels", f"{payload.MAX_TEXT // 1024} KiB"],
        "numbers and times": [f"within the years {datetime.MINYEAR} to {datetime.MAXYEAR}"],
        "a delivery's writes": [f"{web.SAVE_TIMEOUT:g} s"],
        "a run's output": [f"{checks.MAX_STDOUT // mib} MiB", f"more than {checks.MAX_STDOUT} bytes"],
        "the notify webhook's answer": [f"{notify.MAX_ANSWER // 1024} KiB read",
                                        f"{notify.ATTEMPT_TIMEOUT:g} s a phase",
                                        f"{notify.ATTEMPT_TIMEOUT * 2:g} s an attempt",
                                        f"{notify.ATTEMPTS} attempts"],
    }


def limits_problems(text: str, want: dict[str, list[str]]) -> list[str]:
    section = text.split("\n## Limits\n", 1)[-1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and not re.fullmatch(r"-+|limit", cells[0]):
            rows[cells[0]] = cells[1] + " " + cells[2]
    problems = [f"the table has no row for {name}" for name in want if name not in rows]
    problems += [f"the table's row {name} is no limit the test knows" for name in rows if name not in want]
    for name, texts in want.items():
        problems += [f"{name}: the page does not say {t!r}" for t in texts if name in rows and t not in rows[name]]
    return problems


def test_the_limits_table_gives_the_codes_values_both_ways():
    assert limits_problems(PAGE.read_text(), expected()) == []


@pytest.mark.parametrize("old, new, problem", [
    ("complete within 10 s", "complete within 30 s", "request headers"),
    ("| 64 per client address", "| 32 per client address", "connections waiting"),
    ("| nesting |", "| depth |", "no row for nesting"),
])
def test_the_limits_check_fails_on_a_drifted_page(old, new, problem):
    text = PAGE.read_text()
    assert old in text
    assert any(problem in p for p in limits_problems(text.replace(old, new, 1), expected()))


def test_the_limits_check_fails_when_a_constant_changes(monkeypatch):
    monkeypatch.setattr(guard, "HEADER_TIMEOUT", 12.0)
    assert any("request headers" in p for p in limits_problems(PAGE.read_text(), expected()))
