"""The counts of the generated incident tests, as the reliability page shows them (``{{ incident_property_counts() }}``).

``tests/runbooks/test_incident_properties.py`` writes them to :data:`RECORD` (``PROPERTY_RECORD=1``): the seeded set
of ``make test`` under ``seeded`` (and the test fails when a run's counts differ from the recorded ones), the random
set of ``make soak`` under ``soak``. The page renders this file; nobody types the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORD = Path(__file__).resolve().parent / "data" / "incident-properties.json"
_SETS = (("seeded", "Seeded set (`make test`)"), ("soak", "Random set (`make soak`)"))


def read_record(path: Path = RECORD) -> dict[str, Any]:
    """The recorded counts (``{}`` when nothing was recorded yet)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _counts(values: Any) -> str:
    if not isinstance(values, dict) or not values:
        return "—"
    return ", ".join(f"{name} {count}" for name, count in sorted(values.items()))


def incident_property_counts(path: Path = RECORD) -> str:
    """A Markdown table: per set, the examples, runbook runs, incidents by kind, what the oracle said, the
    verdicts, the cases set aside as a known defect (each pinned by a strict xfail) and the failures found."""
    record = read_record(path)
    rows = ["| Set | Examples | Runbook runs | Incidents by kind | Oracle said | Verdicts | Set aside (known defects) "
            "| Failures found |", "|---|---|---|---|---|---|---|---|"]
    for key, label in _SETS:
        entry = record.get(key)
        if not isinstance(entry, dict):
            rows.append(f"| {label} | not recorded | | | | | | |")
            continue
        failure = f" ({entry['failure']})" if entry.get("failure") else ""
        rows.append(f"| {label} | {entry.get('examples', 0)} | {entry.get('runbook_runs', 0)} | "
                    f"{_counts(entry.get('incidents'))} | {_counts(entry.get('truths'))} | "
                    f"{_counts(entry.get('verdicts'))} | {entry.get('set_aside_known_defects', 0)} | "
                    f"{entry.get('failures', 0)}{failure} |".replace("\n", " "))
    return "\n".join(rows)


def define_env(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook, registered from handbook_site/macros.py
    env.macro(incident_property_counts)
