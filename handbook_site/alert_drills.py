"""Alert drills: a fault on a stack started with ``recsys-stack up --alerting``, timed from the injection to the
receiver's diagnosis. Used by ``make demo ALERTING=1`` (scripts/demo.py --alerting) and bench/bench_alerting.py.

Each drill starts a fresh alerting stack (the suite's alerts are ratios over a window, so one fault's alert would
otherwise still be firing when the next is injected), waits until the rules see a healthy stack, injects the fault
into one surface and then watches, polling every 0.1 s with a deadline:

1. Prometheus: the first of the fault's alerts to be *firing* (scrape + rule evaluation, ``for:``);
2. the receiver: the first incident row of that alert (Alertmanager's grouping and delivery);
3. the receiver: a finished row for the broken surface with the cause the fault's drill expects (the triage, the
   queue and the runbook's dry run, whose own duration the row gives in ``seconds``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from recsys_checks.runbooks.spec import RunbookSpec, load_all
from recsys_stack import alerting

# The faults whose alerts the rules can see, each breaking one surface; the alerts each one fires.
ALERTING_FAULTS: dict[str, tuple[str, ...]] = {
    "missing-blob": ("RecsysEmptyRecommendationsHigh", "RecsysArtifactLoadFailures"),
    "corrupt-manifest": ("RecsysArtifactLoadFailures",),
    "foreign-artifact": ("RecsysArtifactLoadFailures",),
    "stale-manifest": ("RecsysManifestStale",),
}
DEADLINE = 180.0
POLL = 0.1


@dataclass
class AlertDrill:
    """One fault through the alerting path, with the seconds of each part (None where it never happened)."""

    fault: str
    tenant: str
    surface: str
    expected: set[tuple[str, str, str | None]]
    fired: float | None = None  # injection -> first alert firing in Prometheus
    delivered: float | None = None  # injection -> first incident row of the alert in the receiver
    diagnosed: float | None = None  # injection -> the finished row with the expected cause
    runbook_seconds: float | None = None  # the receiver's own measure of that runbook run
    row: dict[str, Any] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.row) and _outcome(self.row) in self.expected

    @property
    def grouping(self) -> float | None:
        return None if self.fired is None or self.delivered is None else self.delivered - self.fired

    @property
    def triage(self) -> float | None:
        """Between the delivery and the end of the runbook, what the runbook itself did not take."""
        if self.delivered is None or self.diagnosed is None or self.runbook_seconds is None:
            return None
        return max(self.diagnosed - self.delivered - self.runbook_seconds, 0.0)


def _outcome(row: dict[str, Any]) -> tuple[str, str, str | None]:
    return (row.get("runbook"), row.get("verdict"), row.get("cause"))


def expected_outcomes(specs: list[RunbookSpec], fault: str, alerts: tuple[str, ...]) -> set[tuple]:
    """The dry-run expectations of ``fault``'s drills in the runbooks its alerts start."""
    return {(s.id, d.dry_run.verdict, d.dry_run.cause) for s in specs if set(s.alerts) & set(alerts)
            for d in s.drills if d.fault == fault}


def operator_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def stack_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "recsys_stack.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=operator_env())
    if proc.returncode != 0:
        raise RuntimeError(f"recsys-stack {args[0]} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc


def _get(client: httpx.Client, url: str, **params: str) -> Any:
    resp = client.get(url, params=params, headers={"Accept": "application/json"})
    resp.raise_for_status()
    return resp.json()


def _rows(client: httpx.Client, receiver: str) -> list[dict[str, Any]]:
    doc = _get(client, f"{receiver}/incidents")
    return doc["incidents"] if isinstance(doc, dict) else doc


def _until(what: str, probe: Callable[[], Any], deadline: float) -> Any:
    while True:
        try:
            value = probe()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {DEADLINE:.0f} s")
        time.sleep(POLL)


def run_alert_drill(fault: str, root: Path, tenant: str = "demo", surface: str = "home", *,
                    specs: list[RunbookSpec] | None = None,
                    while_broken: Callable[[AlertDrill, dict], None] | None = None,
                    log: Callable[[str], None] = lambda line: None) -> AlertDrill:
    """Start an alerting stack in ``root``, break ``tenant/surface`` with ``fault`` and time the path to the
    diagnosis; ``while_broken(drill, stack_info)`` runs before the stack is stopped. The stack is always stopped."""
    specs = specs if specs is not None else load_all()
    alerts = ALERTING_FAULTS[fault]
    drill = AlertDrill(fault, tenant, surface, expected_outcomes(specs, fault, alerts))
    try:
        stack_cli("up", "--detach", "--alerting", "--root", str(root))
        info = json.loads((Path(root) / "stack.json").read_text())
        prom, receiver = info["alerting"]["prometheus_url"], info["alerting"]["receiver_url"]
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            def firing() -> list[str]:
                data = _get(client, f"{prom}/api/v1/alerts")["data"]["alerts"]
                return sorted({a["labels"]["alertname"] for a in data if a["state"] == "firing"})

            # Healthy first: traffic answered and seen by Prometheus, nothing firing.
            _until("traffic seen by Prometheus", lambda: _get(client, f"{prom}/api/v1/query", query=(
                'sum(rate(recsys_recommendation_requests_total{outcome="success"}'
                f'[{alerting.LOCAL_WINDOW}])) > 0'))["data"]["result"], time.monotonic() + DEADLINE)
            if firing() or _rows(client, receiver):
                raise RuntimeError(f"the healthy stack already alerts: {firing()}")
            log(f"  {fault}: injecting into {tenant}/{surface}")
            injected = time.monotonic()
            stack_cli("inject", fault, "--root", str(root), "--tenant", tenant, "--surface", surface)
            deadline = injected + DEADLINE

            def first_firing() -> list[str]:
                return [a for a in firing() if a in alerts]

            drill.alerts = _until(f"{'/'.join(alerts)} firing", first_firing, deadline)
            drill.fired = time.monotonic() - injected
            _until("an incident in the receiver",
                   lambda: [r for r in _rows(client, receiver) if r.get("alert") in alerts], deadline)
            drill.delivered = time.monotonic() - injected

            def right() -> dict[str, Any] | None:
                for row in _rows(client, receiver):
                    if ((row.get("tenant"), row.get("surface")) == (tenant, surface)
                            and row.get("status") == "finished" and _outcome(row) in drill.expected):
                        return row
                return None

            try:
                drill.row = _until("the expected diagnosis", right, deadline)
                drill.diagnosed = time.monotonic() - injected
                drill.runbook_seconds = float(drill.row.get("seconds") or 0.0) or None
            except TimeoutError as exc:
                finished = [r for r in _rows(client, receiver) if r.get("status") == "finished"]
                drill.row = finished[0] if finished else {}
                drill.error = f"{exc}; the receiver said {[_outcome(r) for r in finished]}"
            drill.alerts = firing()
            if while_broken is not None and drill.row:
                # Measure beside nothing else: every run the receiver started for this fault has ended.
                _until("every incident row settled", lambda: all(
                    r.get("status") not in ("running", "waiting") for r in _rows(client, receiver)), deadline)
                while_broken(drill, info)
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError, httpx.HTTPError) as exc:
        drill.error = drill.error or str(exc)
    finally:
        try:
            stack_cli("down", "--root", str(root))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            drill.error = drill.error or f"down failed: {exc}"
    return drill


def cli_run_seconds(row: dict[str, Any], info: dict, out: Path) -> float:
    """Seconds of ``recsys-checks runbook run`` (a dry run, whole process) of the row's runbook and surface, with the
    parameters the stack gives its receiver that this runbook declares, against the same broken stack."""
    from recsys_stack.processes import client_env, read_secrets

    specs = {s.id: s for s in load_all()}
    spec = specs[row["runbook"]]
    argv = [sys.executable, "-m", "recsys_checks.cli", "runbook", "run", spec.id, "--out", str(out),
            "-p", f"tenant={row['tenant']}", "-p", f"surface={row['surface']}"]
    for param in alerting.receiver_params(Path(info["root"])):
        name, _, value = param.partition("=")
        target, _, name = name.rpartition(":")
        if (not target or target == spec.id) and name in spec.parameters:
            argv += ["-p", f"{name}={value}"]
    env = {**operator_env(), **client_env(info, read_secrets(Path(info["root"]))), "NO_COLOR": "1"}
    started = time.monotonic()
    subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    return time.monotonic() - started
