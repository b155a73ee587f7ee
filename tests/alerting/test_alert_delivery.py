"""The Prometheus → Alertmanager half of `recsys-stack up --alerting`, against a webhook receiver of our own.

Real Prometheus and Alertmanager (Debian's binaries, `make test-tools`) on loopback, with the rules derived from
observability/alerts.yaml: a healthy stack alerts nothing; each fault the rules can see fires its alert, and
Alertmanager delivers it (webhook payload version 4) with the bearer token, and nothing else holds the token.
"""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alerting.alertkit import (
    BROKEN,
    FAULT_ALERTS,
    CaptureServer,
    alerting_stack,
    assert_rules_see_a_healthy_stack,
    base_env,
    require_alerting_tools,
    wait_for,
)

from recsys_stack import alerting

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# From injection to delivery takes a few seconds (scrape 1 s, for: 2s, group_wait 1 s); this is the bound.
DELIVERY_TIMEOUT = 60


def _stack_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.parametrize("fault", sorted(FAULT_ALERTS))
def test_the_fault_fires_its_alert_and_alertmanager_delivers_it_with_the_token(fault: str, tmp_path: Path) -> None:
    require_alerting_tools()
    token = secrets.token_urlsafe(24)
    tenant, surface = BROKEN
    with CaptureServer() as capture, \
            alerting_stack(tmp_path / "stack", "--alerts-webhook", capture.url, token=token) as stack:
        assert stack.alerting["webhook_url"] == capture.url and stack.alerting["receiver_url"] is None
        assert "receiver" not in stack.handle.pids()
        assert_rules_see_a_healthy_stack(stack, settle=alerting_settle())
        assert capture.received() == [], "a healthy stack notified"

        injected = time.monotonic()
        stack.inject(fault, tenant, surface)
        expected = FAULT_ALERTS[fault]
        wait_for(f"{sorted(expected)} firing in Prometheus after {fault}",
                 lambda: expected <= stack.firing(), timeout=DELIVERY_TIMEOUT)
        delivered = wait_for(
            f"{sorted(expected)} delivered by Alertmanager after {fault}",
            lambda: (got := {a["labels"]["alertname"]: (r, a) for r, a in capture.alerts()}).keys() >= expected
            and got,
            timeout=DELIVERY_TIMEOUT,
        )
        seconds = max(r["at"] for r, _ in delivered.values()) - injected
        assert seconds < DELIVERY_TIMEOUT

        for name in expected:
            request, alert = delivered[name]
            assert request["path"] == "/hook"
            assert request["headers"].get("Authorization") == f"Bearer {token}"
            body = request["body"]
            assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "recsys-alerts"
            assert alert["labels"]["severity"] == "page" and alert["annotations"]["runbook_url"].startswith("how-to/")
            assert alert["fingerprint"] and alert["startsAt"]
            # The suite's metrics carry no tenant or surface label, and neither do its alerts.
            assert "tenant" not in alert["labels"] and "surface" not in alert["labels"]
        if "RecsysArtifactLoadFailures" in expected:
            kinds = {a["labels"].get("kind") for _, a in capture.alerts() if
                     a["labels"]["alertname"] == "RecsysArtifactLoadFailures"}
            assert kinds == {"manifest" if fault == "corrupt-manifest" else "popularity"}, kinds
        # Only the alerts the fault explains: nothing else fired on a stack with one broken surface.
        assert stack.firing() == expected
        assert {a["labels"]["alertname"] for _, a in capture.alerts()} == expected

        _assert_the_token_is_only_in_alertmanagers_config(stack.root, token, stack.handle.pids())


def _assert_the_token_is_only_in_alertmanagers_config(root: Path, token: str, pids: dict[str, int]) -> None:
    config = root / "alerting" / "alertmanager.yml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    holding = [p for p in _stack_files(root) if token.encode() in p.read_bytes()]
    assert holding == [config], holding
    for name, pid in pids.items():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert token.encode() not in cmdline, f"{name}'s command line holds the token"
    # Alertmanager shows its configuration with the secret masked.
    import httpx

    with httpx.Client(timeout=5.0, trust_env=False) as client:
        status = client.get(f"{_read_alerting(root)['alertmanager_url']}/api/v2/status").json()
    assert token not in status["config"]["original"] and "<secret>" in status["config"]["original"]


def _read_alerting(root: Path) -> dict:
    import json

    return json.loads((root / "stack.json").read_text())["alerting"]


def alerting_settle() -> float:
    """How long a healthy stack is watched: long enough for any alert to have gone pending and fired."""
    return alerting.seconds(alerting.LOCAL_FOR) + 2 * alerting.seconds(alerting.INTERVAL) + 1


def _up_in_process(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    from recsys_stack.cli import main

    code = main(["up", "--detach", "--alerting", "--root", str(root), *args])
    return code, capsys.readouterr().err


def test_without_prometheus_up_fails_in_one_line_and_changes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(alerting, "find_binary", lambda *names: None)
    root = tmp_path / "stack"
    code, err = _up_in_process(root, capsys)
    assert code == 1, err
    assert "--alerting needs prometheus and alertmanager" in err and "make test-tools" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not root.exists(), "nothing may be created when the stack cannot start"


def test_without_the_receiver_command_up_says_so_and_changes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    require_alerting_tools()
    # A recsys-checks without `alerts serve` answers --help with a usage error, as argparse does.
    monkeypatch.setattr(alerting, "RECEIVER_ARGV", (sys.executable, "-c", "import sys; "
                        "sys.exit(\"recsys-checks: error: argument COMMAND: invalid choice: 'alerts'\")"))
    root = tmp_path / "stack"
    code, err = _up_in_process(root, capsys)
    assert code == 1, err
    assert "recsys-checks alerts serve" in err and "does not have" in err and "invalid choice: 'alerts'" in err
    assert "--alerts-webhook URL" in err
    assert not root.exists()


def test_alerting_options_without_alerting_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "recsys_stack.cli", "up", "--detach", "--root", str(tmp_path / "s"),
                           "--alerts-webhook", "http://127.0.0.1:1/x"], capture_output=True, text=True, timeout=60,
                          env=base_env())
    assert proc.returncode == 2 and "go with --alerting" in proc.stderr
    assert not (tmp_path / "s").exists()


def test_a_bad_token_or_webhook_is_refused_before_anything_starts(tmp_path: Path, capsys, monkeypatch) -> None:
    require_alerting_tools()
    monkeypatch.setenv(alerting.TOKEN_ENV, "too short")
    code, err = _up_in_process(tmp_path / "a", capsys, "--alerts-webhook", "http://127.0.0.1:1/x")
    assert code == 1 and "RECSYS_ALERTS_TOKEN must be" in err and "too short" not in err
    monkeypatch.setenv(alerting.TOKEN_ENV, "x" * 20)
    code, err = _up_in_process(tmp_path / "b", capsys, "--alerts-webhook", "ftp://somewhere")
    assert code == 1 and "is not an http(s) URL" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
