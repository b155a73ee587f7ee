"""The local rules `recsys-stack up --alerting` derives from observability/alerts.yaml: the same alerts, only faster."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from recsys_stack import alerting

SOURCE = alerting.ALERT_RULES


def _rules(doc: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_every_alert_is_kept_with_its_labels_annotations_and_thresholds() -> None:
    source = _rules(yaml.safe_load(SOURCE.read_text()))
    local = _rules(alerting.derive_rules(SOURCE))
    assert set(local) == set(source) and source
    for name, rule in source.items():
        derived = local[name]
        assert derived["labels"] == rule["labels"], name
        assert derived["annotations"] == rule["annotations"], name
        assert derived["for"] == alerting.LOCAL_FOR, name
        # Putting the original windows back gives the original expression: only the windows changed.
        windows = re.findall(r"\[\s*\d+[a-z]+\s*\]", rule["expr"])
        restored = derived["expr"]
        for window in windows:
            restored = restored.replace(f"[{alerting.LOCAL_WINDOW}]", window, 1)
        assert restored == rule["expr"], name
        assert f"[{alerting.LOCAL_WINDOW}]" in derived["expr"] or not windows, name


def test_range_windows_are_replaced_and_nothing_else(tmp_path: Path) -> None:
    doc = {"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": 'sum(rate(x{a="[5m]x"}[5m])) / sum(rate(y[ 1h ])) > 0.5 and z > 300', "for": "15m"},
        {"record": "r", "expr": "increase(x[30s])"},
    ]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc))
    derived = alerting.derive_rules(path, for_="3s", window="7s")
    alert, record = derived["groups"][0]["rules"]
    assert alert["for"] == "3s" and "for" not in record
    assert alert["expr"].count("[7s]") == 2 and "> 0.5" in alert["expr"] and "z > 300" in alert["expr"]
    assert record["expr"] == "increase(x[7s])"
    assert derived["groups"][0]["interval"] == alerting.INTERVAL


def test_a_file_that_is_not_a_rule_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "no.yaml").write_text("alerts: []\n")
    with pytest.raises(alerting.AlertingError, match="no `groups:` list"):
        alerting.derive_rules(tmp_path / "no.yaml")
    with pytest.raises(alerting.AlertingError, match="cannot read"):
        alerting.derive_rules(tmp_path / "missing.yaml")


@pytest.mark.subprocess
def test_promtool_accepts_the_derived_rules(tmp_path: Path) -> None:
    promtool = alerting.find_binary("promtool") or shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found: `make test-tools` unpacks it from Debian's prometheus package")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(alerting.derive_rules(SOURCE), sort_keys=False))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules(yaml.safe_load(SOURCE.read_text())))} rules found" in proc.stdout


def test_alertmanager_routes_everything_to_the_webhook_with_the_token() -> None:
    config = alerting.alertmanager_config("http://127.0.0.1:1/alertmanager", "t" * 20)
    route = config["route"]
    assert "routes" not in route and "matchers" not in route  # every alert takes the root route
    assert route["group_wait"] == alerting.GROUP_WAIT and route["group_interval"] == alerting.GROUP_INTERVAL
    (receiver,) = config["receivers"]
    assert receiver["name"] == route["receiver"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:1/alertmanager" and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials": "t" * 20}


def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    for bad in ("short", "a" * 20 + "\n", "with space " * 3, "é" * 20):
        with pytest.raises(alerting.AlertingError) as caught:
            alerting.check_token(bad)
        assert bad.strip() not in str(caught.value)
    alerting.check_token("x" * 16)
