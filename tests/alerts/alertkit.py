"""Helpers for the receiver tests: the receiver as on-call runs it (``recsys-checks alerts serve`` in a subprocess), driving a fake recsys-checks.

``receiver`` starts one: ``with receiver(tmp_path, fleet=[...], run_sleep=0.1) as r: r.post(payload(alert(...)))``.
The fake's state can be changed between alerts (``r.set_state(...)``) and its calls are logged (``r.calls()``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FAKE = Path(__file__).resolve().parent / "fake_checks.py"
TOKEN = "alert-token-" + "x" * 20
START_TIMEOUT = 60.0


def alert(name: str = "RecsysEmptyRecommendationsHigh", fingerprint: str = "f00d01", *,
          starts: str = "2026-12-03T10:00:00Z", status: str = "firing", labels: dict | None = None,
          annotations: dict | None = None) -> dict[str, Any]:
    return {"status": status, "labels": {"alertname": name, "severity": "page", **(labels or {})},
            "annotations": {"summary": "test alert", **(annotations or {})}, "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-03T11:00:00Z",
            "generatorURL": "http://prometheus.local/graph", "fingerprint": fingerprint}


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "recsys", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.local", "alerts": list(alerts)}


TWO_SURFACES = [{"tenant": "demo", "surface": "home"}, {"tenant": "demo", "surface": "search"}]


class Running:
    def __init__(self, proc: subprocess.Popen, out: Path, url: str, work: Path) -> None:
        self.proc, self.out, self.url, self.work = proc, out, url, work
        self.client = httpx.Client(base_url=url, timeout=30)

    def post(self, body: Any, *, token: str | None = TOKEN, raw: bytes | None = None,
             headers: dict | None = None) -> httpx.Response:
        h = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.client.post("/alertmanager", content=raw if raw is not None else json.dumps(body), headers=h)

    def rows(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/incidents", headers={"Accept": "application/json"}, params=params)
        response.raise_for_status()
        return response.json()

    def incident(self, iid: str) -> dict[str, Any]:
        response = self.client.get(f"/incidents/{iid}", headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    def wait_done(self, timeout: float = 60.0, count: int | None = None) -> list[dict[str, Any]]:
        """The rows once no incident is running (and at least ``count`` incidents exist)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(limit=100000)
            ids = {r["id"] for r in rows}
            if rows and all(r["incident_status"] != "running" for r in rows) and (count is None or len(ids) >= count):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: "
                                     f"{[r for r in rows if r['incident_status'] == 'running'][:3]}")
            time.sleep(0.1)

    def calls(self, prefix: tuple[str, ...] = ()) -> list[list[str]]:
        path = self.work / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [c for c in calls if tuple(c[: len(prefix)]) == prefix and c[:2] not in (["runbook", "list"],
                                                                                         ["runbook", "show"])]

    def set_state(self, **state: Any) -> None:
        path = self.work / "state.json"
        current = json.loads(path.read_text())
        current.update(state)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current))
        tmp.replace(path)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log(self) -> str:
        return (self.work / "receiver.log").read_text()


def start_receiver(work: Path, out: Path, specs: Path, args: tuple[str, ...] = (), env: dict | None = None,
                   command: str | None = None) -> Running:
    work.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    full_env.update({"RECSYS_ALERTS_TOKEN": TOKEN, "FAKE_CHECKS_STATE": str(work / "state.json"),
                     "FAKE_CHECKS_LOG": str(work / "calls.jsonl"), "FAKE_CHECKS_SPECS": str(specs)})
    full_env.update(env or {})
    marker = out / ".receiver.json"
    with (work / "receiver.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recsys_checks.cli", "alerts", "serve", "--listen", "127.0.0.1:0",
             "--out", str(out), "--checks-command", command or f"{sys.executable} {FAKE}", *args],
            stdout=log, stderr=log, env=full_env)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the receiver exited {proc.returncode}: {(work / 'receiver.log').read_text()}")
        try:
            info = json.loads(marker.read_text())
            if info.get("pid") == proc.pid:
                if httpx.get(info["url"] + "/healthz", timeout=5).status_code == 200:
                    return Running(proc, out, info["url"], work)
        except (OSError, ValueError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the receiver did not answer /healthz in time")
