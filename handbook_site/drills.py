"""Runbook drills against a running local stack: inject a fault, run the runbook, check the verdict.

Used by the drill tests (``tests/runbooks``) and by ``make demo``. Runbooks are run the way on-call runs them,
through ``recsys-checks runbook run`` in a subprocess, with the environment ``recsys-stack env`` gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_checks.cli.runbook_command import runbook_run_args
from recsys_checks.runbooks.spec import Drill, RunbookSpec

RUN_TIMEOUT = 300
ROOT = Path(__file__).resolve().parents[1]
# One JSON file per drill (runbook, fault, store) that last passed; git-ignored, read by the docs build.
RESULTS_DIR = ROOT / ".drills"


@dataclass
class Outcome:
    """One run of a runbook in a drill: the phase, the verdict and cause the record gives, and how long it took."""

    phase: str
    exit_code: int
    verdict: str | None
    cause: str | None
    seconds: float
    out: Path
    record: dict[str, Any] = field(repr=False, default_factory=dict)
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")

    def describe(self) -> str:
        return (f"{self.phase}: exit {self.exit_code}, verdict {self.verdict}, cause {self.cause} "
                f"({self.seconds:.1f} s)\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-2000:]}")


def client_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The environment of an operator pointed at the stack: nothing inherited from RECSYS_*/AWS_*, tools on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env.update(stack_env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def drill_params(drill: Drill, root: Path, tenant: str = "demo", surface: str = "home") -> dict[str, str]:
    """The drill's parameters with ``{stack_root}`` filled in, plus tenant and surface."""
    params = {k: str(v).replace("{stack_root}", str(root)) for k, v in drill.params.items()}
    return {"tenant": tenant, "surface": surface, **params}


def run_runbook(runbook_id: str, params: dict[str, str], env: dict[str, str], out: Path, *, execute: bool,
                phase: str) -> Outcome:
    argv = [sys.executable, "-m", "recsys_checks.cli", *runbook_run_args(runbook_id, params, execute=execute, out=out)]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
    seconds = time.monotonic() - started
    record_path = out / f"{runbook_id}.result.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    return Outcome(phase, proc.returncode, record.get("verdict"), record.get("cause"), seconds, out, record,
                   proc.stdout, proc.stderr)


def result_path(runbook_id: str, fault: str, store: str, results: Path = RESULTS_DIR) -> Path:
    return results / f"{runbook_id}--{fault}--{store}.json"


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def forget_result(runbook_id: str, fault: str, store: str, results: Path = RESULTS_DIR) -> None:
    """Drop the drill's previous result, so that a drill that fails now is not shown as verified."""
    result_path(runbook_id, fault, store, results).unlink(missing_ok=True)


def write_result(runbook_id: str, fault: str, store: str, outcomes: list[Outcome],
                 results: Path = RESULTS_DIR) -> Path:
    """Record a drill that passed: runbook, fault, store, each phase's verdict, the date and the commit."""
    from datetime import UTC, datetime

    status = _git("status", "--porcelain", "--untracked-files=no")
    doc = {
        "runbook": runbook_id,
        "fault": fault,
        "store": store,
        "passed": True,
        "verdicts": {o.phase: {"verdict": o.verdict, "cause": o.cause} for o in outcomes},
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git("rev-parse", "HEAD"),
        "modified": bool(status) if status is not None else None,
    }
    path = result_path(runbook_id, fault, store, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_results(runbook_id: str, results: Path = RESULTS_DIR) -> dict[tuple[str, str], dict[str, Any]]:
    """The passed drills of a runbook, by (fault, store); unreadable files are ignored."""
    found = {}
    for path in sorted(results.glob(f"{runbook_id}--*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("runbook") == runbook_id and doc.get("passed") is True:
            found[(doc.get("fault"), doc.get("store"))] = doc
    return found


def inject(root: Path, fault: str, tenant: str = "demo", surface: str = "home") -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "recsys_stack.cli", "inject", fault, "--root", str(root), "--tenant", tenant,
         "--surface", surface],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, env=client_env({}),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"recsys-stack inject {fault} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else fault


def heal(root: Path) -> None:
    subprocess.run([sys.executable, "-m", "recsys_stack.cli", "heal", "--root", str(root)], capture_output=True,
                   text=True, timeout=RUN_TIMEOUT, env=client_env({}), check=True)


def matches(outcome: Outcome, verdict: str, cause: str | None) -> bool:
    return outcome.verdict == verdict and (cause is None or outcome.cause == cause)


def drill_for_fault(specs: list[RunbookSpec], fault: str, runbook_id: str) -> Drill | None:
    """The drill of runbook ``runbook_id`` that answers ``fault``."""
    for spec in specs:
        if spec.id == runbook_id:
            return next((d for d in spec.drills if d.fault == fault), None)
    return None
