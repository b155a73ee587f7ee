"""End to end: fault → alert in Prometheus → Alertmanager → the receiver's triage and dry run → an incident.

`recsys-stack up --alerting` with everything real on loopback: Prometheus with the rules derived from
observability/alerts.yaml, Alertmanager with the bearer token, and `recsys-checks alerts serve`. The suite's alerts
name no tenant or surface, so the incident must find the broken one itself: one surface of a stack of four is
broken (acme/search, not the default target), and only that one may be reported.

The expected (runbook, verdict, cause) of each fault are the dry-run expectations of its drills in the runbook specs
whose `alerts:` name an alert the fault fires; the incident list is read as JSON (`Accept: application/json`) until
a deadline. Before each injection the same stack is shown healthy: the rules see traffic and fresh manifests, and no
alert fires, reaches Alertmanager or becomes an incident.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerting.alertkit import (
    BROKEN,
    FAULT_ALERTS,
    AlertingStack,
    alerting_stack,
    assert_rules_see_a_healthy_stack,
    base_env,
    expected_outcomes,
    require_alerting_tools,
    wait_for,
)

from recsys_stack import alerting

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# Injection to a finished diagnosis: a few seconds to fire and deliver, then the triage and a notebook run.
INCIDENT_TIMEOUT = 180


def require_receiver() -> None:
    why = alerting.receiver_available(base_env())
    if why is not None:
        pytest.skip(f"the alert receiver `recsys-checks alerts serve` is not there yet: {why}")


class Receiver:
    """The receiver of an alerting stack, read as on-call's tools read it."""

    def __init__(self, stack: AlertingStack) -> None:
        self.url = stack.alerting["receiver_url"]
        self.headers = {"Authorization": f"Bearer {stack.token}"}

    def get(self, path: str, accept: str = "application/json") -> httpx.Response:
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            return client.get(f"{self.url}{path}", headers={**self.headers, "Accept": accept})

    def incidents(self) -> list[dict[str, Any]]:
        resp = self.get("/incidents")
        assert resp.status_code == 200, resp.text[:500]
        assert resp.headers["content-type"].startswith("application/json"), resp.headers
        doc = resp.json()
        rows = doc["incidents"] if isinstance(doc, dict) else doc
        assert isinstance(rows, list), doc
        return rows


def surface_of(row: dict[str, Any]) -> tuple[str, str] | None:
    return (row["tenant"], row["surface"]) if row.get("tenant") and row.get("surface") else None


@pytest.mark.parametrize("fault", sorted(FAULT_ALERTS))
def test_the_fault_becomes_an_incident_naming_the_broken_surface(fault: str, tmp_path: Path) -> None:
    require_alerting_tools()
    require_receiver()
    alerts = FAULT_ALERTS[fault]
    expected = expected_outcomes(fault, alerts)
    assert expected, f"no runbook that {sorted(alerts)} start drills {fault}: the test would prove nothing"
    with alerting_stack(tmp_path / "stack") as stack:
        receiver = Receiver(stack)
        assert receiver.get("/healthz").status_code == 200
        # Healthy first: the rules see traffic and fresh manifests, and nothing fires, reaches Alertmanager or
        # becomes an incident.
        assert_rules_see_a_healthy_stack(stack, settle=alerting.seconds(alerting.LOCAL_FOR)
                                         + alerting.seconds(alerting.GROUP_WAIT) + 2)
        assert stack.alertmanager_alerts() == []
        assert receiver.incidents() == []

        injected = time.monotonic()
        stack.inject(fault, *BROKEN)

        def diagnosed() -> dict[str, Any] | None:
            for row in receiver.incidents():
                if (surface_of(row) == BROKEN and row.get("status") == "finished"
                        and (row.get("runbook"), row.get("verdict"), row.get("cause")) in expected):
                    return row
            return None

        try:
            row = wait_for(f"an incident for {'/'.join(BROKEN)} ending in one of {sorted(expected)}", diagnosed,
                           timeout=INCIDENT_TIMEOUT, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nfiring: {sorted(stack.firing())}\nincidents: {receiver.incidents()}\n"
                                 f"receiver log:\n{_tail(stack.root / 'logs' / 'receiver.log')}") from None
        seconds = time.monotonic() - injected
        assert row["alert"] in alerts and row["fingerprint"] and row["id"]
        assert row["started_at"] and row["finished_at"]

        # Every run of the triage has ended; none of them names a healthy surface.
        rows = wait_for("every incident row settled", lambda: (r := receiver.incidents()) and all(
            x.get("status") != "running" for x in r) and r, timeout=INCIDENT_TIMEOUT, interval=0.5)
        named = {surface_of(r) for r in rows} - {None}
        assert named == {BROKEN}, f"healthy surfaces reported: {named - {BROKEN}}\n{rows}"
        assert {r["alert"] for r in rows} <= alerts, rows
        assert all(r.get("status") in ("finished", "nothing-found", "no-runbook", "not-run") for r in rows), rows

        # The incident's page: JSON with Accept: application/json, HTML otherwise, verdict and cause in both.
        one = receiver.get(f"/incidents/{row['id']}")
        assert one.status_code == 200 and one.headers["content-type"].startswith("application/json")
        assert row["cause"] in one.text and row["verdict"] in one.text
        page = receiver.get(f"/incidents/{row['id']}", accept="text/html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert row["cause"] in page.text and row["verdict"] in page.text
        if row.get("plan_id"):
            assert row["plan_id"] in page.text

        metrics = receiver.get("/metrics", accept="text/plain")
        assert metrics.status_code == 200 and metrics.text.strip()
        _assert_no_token_outside_alertmanagers_config(stack)
        print(f"{fault}: incident {row['runbook']} {row['verdict']} {row['cause']} {seconds:.1f} s after injection")


def _assert_no_token_outside_alertmanagers_config(stack: AlertingStack) -> None:
    config = stack.root / "alerting" / "alertmanager.yml"
    holding = [p for p in stack.root.rglob("*") if p.is_file() and not p.is_symlink() and p != config
               and stack.token.encode() in p.read_bytes()]
    assert holding == [], f"the token is in {holding}"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
