"""observability/alerts.yaml agrees with the runbooks and the site: names, links, syntax and thresholds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recsys_checks.runbooks.spec import load_all  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "observability" / "alerts.yaml"
RUNBOOK_PAGE = "how-to/runbooks/"


def _rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def _promtool() -> str:
    """promtool on PATH, or the copy `make test-tools` unpacks next to the virtualenv's python; skip otherwise."""
    beside = Path(sys.executable).parent / "promtool"
    found = shutil.which("promtool") or (str(beside) if beside.exists() else None)
    if not found:
        pytest.skip("promtool not installed (Debian package prometheus; `make test-tools` puts it in .venv/bin)")
    return found


def test_every_alert_a_runbook_names_is_defined():
    """An alert listed under a spec's `alerts:` is a rule of alerts.yaml, so the page's promise is true."""
    defined = {rule["alert"] for rule in _rules()}
    named = {(spec.id, alert) for spec in load_all() for alert in spec.alerts}
    missing = sorted((rid, alert) for rid, alert in named if alert not in defined)
    assert named and not missing, f"runbook specs name alerts that alerts.yaml does not define: {missing}"


def test_every_rule_has_a_summary_a_severity_and_a_runbook_url():
    for rule in _rules():
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), rule["alert"]
        assert rule.get("labels", {}).get("severity") in ("page", "ticket"), rule["alert"]
        url = annotations.get("runbook_url", "")
        assert url.startswith(RUNBOOK_PAGE) and url.endswith("/"), (rule["alert"], url)


def test_every_runbook_url_resolves_to_a_runbook_page_of_the_built_site(built_site):
    """The relative runbook_url is a runbook page of the site, and that page lists the alert as one leading to it."""
    specs = {spec.id: spec for spec in load_all()}
    for rule in _rules():
        url = rule["annotations"]["runbook_url"]
        page = built_site / url / "index.html"
        assert page.is_file(), f"{rule['alert']}: {url} is not a page of the built site"
        runbook_id = url.removeprefix(RUNBOOK_PAGE).strip("/")
        assert runbook_id in specs, f"{rule['alert']}: {url} is not a runbook page"
        assert rule["alert"] in specs[runbook_id].alerts, \
            f"{rule['alert']} links to {runbook_id}, whose spec does not list it under alerts"
        assert f"<code>{rule['alert']}</code>" in page.read_text(), f"{url} does not name {rule['alert']}"


@pytest.mark.subprocess
def test_promtool_accepts_the_rules():
    proc = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.subprocess
def test_promtool_unit_tests_of_the_thresholds_pass():
    """A daily publish: 25 h of manifest age is quiet and 27 h pages; each rate rule just inside and beyond."""
    proc = subprocess.run([_promtool(), "test", "rules", "alerts.test.yaml"], cwd=ALERTS.parent,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
