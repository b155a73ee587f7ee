"""Helpers of the alerting tests: a stack started with ``--alerting``, a loopback capture server standing in for a
webhook receiver, Prometheus and Alertmanager queries, and polls that always end at a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from stackfixture import StackHandle, down_and_check, run_cli

from recsys_checks.runbooks.spec import load_all
from recsys_stack import alerting
from recsys_stack.processes import client_env, read_secrets

UP_TIMEOUT = 240
T = TypeVar("T")

# The faults whose alerts the rules can see, and the alerts each one must fire. Each breaks one surface only.
FAULT_ALERTS: dict[str, set[str]] = {
    "missing-blob": {"RecsysEmptyRecommendationsHigh", "RecsysArtifactLoadFailures"},
    "corrupt-manifest": {"RecsysArtifactLoadFailures"},
    "stale-manifest": {"RecsysManifestStale"},
}
# Not the stack's default target: a receiver that assumed demo/home would not pass.
BROKEN = ("acme", "search")


def require_alerting_tools() -> None:
    """Skip (naming what is missing and how to get it) when Prometheus or Alertmanager cannot run here."""
    try:
        alerting.binaries()
    except alerting.AlertingError as exc:
        pytest.skip(str(exc))


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env.update(extra)
    return env


@dataclass
class AlertingStack:
    """A stack started with ``--alerting``: its handle, the ``alerting`` part of stack.json and the token."""

    handle: StackHandle
    token: str = field(repr=False)

    @property
    def root(self) -> Path:
        return self.handle.root

    @property
    def alerting(self) -> dict[str, Any]:
        return self.handle.info["alerting"]

    def prometheus(self, path: str, **params: str) -> Any:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            resp = client.get(f"{self.alerting['prometheus_url']}{path}", params=params)
        resp.raise_for_status()
        return resp.json()["data"]

    def query(self, promql: str) -> list[dict]:
        return self.prometheus("/api/v1/query", query=promql)["result"]

    def alerts(self) -> list[dict]:
        """Prometheus's active alerts (pending or firing)."""
        return self.prometheus("/api/v1/alerts")["alerts"]

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}

    def alertmanager_alerts(self) -> list[dict]:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            resp = client.get(f"{self.alerting['alertmanager_url']}/api/v2/alerts")
        resp.raise_for_status()
        return resp.json()

    def inject(self, fault: str, tenant: str, surface: str) -> None:
        run_cli("inject", fault, "--root", str(self.root), "--tenant", tenant, "--surface", surface)


@contextmanager
def alerting_stack(root: Path, *extra_up_args: str, token: str | None = None) -> Iterator[AlertingStack]:
    """``recsys-stack up --detach --alerting`` in ``root`` (with ``token`` as RECSYS_ALERTS_TOKEN when given);
    always ``down`` afterwards and check that no process it recorded is left running."""
    root = Path(root)
    env = base_env(**({alerting.TOKEN_ENV: token} if token else {}))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "recsys_stack.cli", "up", "--detach", "--alerting", "--root", str(root),
             *extra_up_args],
            capture_output=True, text=True, timeout=UP_TIMEOUT, env=env,
        )
        assert proc.returncode == 0, f"up --alerting exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        info = json.loads((root / "stack.json").read_text())
        handle = StackHandle(root=root, info=info, env=client_env(info, read_secrets(root)))
        yield AlertingStack(handle, token or alertmanager_token(root))
    finally:
        down_and_check(root)


def alertmanager_token(root: Path) -> str:
    """The bearer token of the stack, read where it is kept: Alertmanager's configuration."""
    import yaml

    doc = yaml.safe_load((Path(root) / "alerting" / "alertmanager.yml").read_text())
    return doc["receivers"][0]["webhook_configs"][0]["http_config"]["authorization"]["credentials"]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Call ``probe`` until it returns something other than None or False; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s"
                                 + (f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""))
        time.sleep(interval)


def assert_rules_see_a_healthy_stack(stack: AlertingStack, settle: float) -> None:
    """The rules have inputs (traffic is answered, manifests are loaded) and, after ``settle`` seconds of
    evaluation, not one alert is pending or firing: a quiet Prometheus that could not see would prove nothing."""
    wait_for("successful recommend requests in Prometheus",
             lambda: stack.query('sum(rate(recsys_recommendation_requests_total{endpoint="recommend",'
                                 f'outcome="success"}}[{alerting.LOCAL_WINDOW}])) > 0'), timeout=30)
    ages = wait_for("a manifest age in Prometheus", lambda: stack.query("recsys_artifact_manifest_age_seconds >= 0"),
                    timeout=30)
    assert float(ages[0]["value"][1]) < 26 * 3600, ages
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        active = [(a["labels"]["alertname"], a["state"]) for a in stack.alerts()]
        assert not active, f"a healthy stack has active alerts: {active}"
        time.sleep(0.5)
    groups = stack.prometheus("/api/v1/rules", type="alert")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert rules and all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def expected_outcomes(fault: str, alerts: set[str]) -> set[tuple[str, str, str | None]]:
    """(runbook, verdict, cause) a dry run may end with for ``fault`` when one of ``alerts`` starts it: the dry-run
    expectation of the fault's drill in every runbook spec whose ``alerts:`` names one of them."""
    out = set()
    for spec in load_all():
        if not set(spec.alerts) & alerts:
            continue
        for drill in spec.drills:
            if drill.fault == fault:
                out.add((spec.id, drill.dry_run.verdict, drill.dry_run.cause))
    return out


class CaptureServer:
    """A webhook receiver of our own on 127.0.0.1 that records every POST (headers and JSON body) and answers 200.

    Used as a context manager; it always stops (and a daemon thread never outlives the test run)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        captured = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
                body = self.rfile.read(length)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with captured._lock:
                    captured.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": doc, "at": time.monotonic()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def alerts(self, status: str = "firing") -> list[tuple[dict, dict]]:
        """(request, alert) for every delivered alert with ``status``."""
        return [(r, a) for r in self.received() for a in ((r["body"] or {}).get("alerts") or [])
                if a.get("status") == status]
