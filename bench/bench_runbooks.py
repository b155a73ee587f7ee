"""Benchmarks of the runbooks, each against a baseline measured in the same run.

- One runbook run (``recsys-checks runbook run empty-recs``, a healthy stack, whole process) against papermill
  running an empty notebook (``papermill empty.ipynb out.ipynb``, whole process): the floor any notebook run pays
  for starting Python, papermill and a kernel. Target: at most 1.5x the floor.
- Fault to verified recovery: for every fault of the local stack, the seconds from the start of
  ``recsys-checks runbook run ID --execute`` to its verdict ``mitigated`` (the runbook's own verification passed).
  Target: a median of 3 s or less.

Run with ``make bench`` (or ``python bench/bench_runbooks.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from handbook_site import drills
from recsys_checks.runbooks.spec import load_all
from recsys_stack.faults import FAULTS
from recsys_stack.processes import client_env, read_secrets

RUN_TARGET = 1.5
RECOVERY_TARGET = 3.0


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recsys-bench-runbooks-") as tmp:
        work = Path(tmp)
        root = work / "stack"
        stack = [sys.executable, "-m", "recsys_stack.cli"]
        subprocess.run([*stack, "up", "--detach", "--root", str(root)], check=True, capture_output=True,
                       env=drills.client_env({}))
        try:
            info = json.loads((root / "stack.json").read_text())
            env = drills.client_env(client_env(info, read_secrets(root)))
            empty = nbformat.v4.new_notebook()
            empty.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
            empty.cells = [nbformat.v4.new_code_cell("tenant = 'demo'", metadata={"tags": ["parameters"]})]
            nbformat.write(empty, work / "empty.ipynb")
            papermill = [sys.executable, "-m", "papermill", "--log-level", "ERROR", str(work / "empty.ipynb"),
                         str(work / "empty.out.ipynb"), "-p", "tenant", "demo"]
            floors, runs = [], []
            for n in range(args.repeats + 1):  # the first of each is a warm-up
                floors.append(_timed(papermill, env, work))
                runs.append(_timed([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs",
                                    "--out", str(work / f"healthy-{n}")], env, work))
            floor, run = statistics.median(floors[1:]), statistics.median(runs[1:])

            specs = load_all()
            recoveries = []
            for fault in FAULTS.values():
                drill = drills.drill_for_fault(specs, fault.name, fault.runbook)
                if drill is None:
                    continue
                drills.inject(root, fault.name)
                outcome = drills.run_runbook(fault.runbook, drills.drill_params(drill, root), env,
                                             work / f"recovery-{fault.name}", execute=True, phase="execute")
                drills.heal(root)
                recoveries.append((fault.name, fault.runbook, outcome.verdict, outcome.seconds))
        finally:
            subprocess.run([*stack, "down", "--root", str(root)], capture_output=True, env=drills.client_env({}))

    ratio = run / floor
    print(f"{'benchmark':<44}  {'baseline':<26}  {'median':>8}  {'measured':<26}  {'median':>8}  {'ratio':>6}")
    print(f"{'runbook run, healthy stack (whole process)':<44}  {'papermill, empty notebook':<26}  "
          f"{floor:>7.2f}s  {'runbook run empty-recs':<26}  {run:>7.2f}s  {ratio:>5.2f}x  "
          f"(target <= {RUN_TARGET}x: {'met' if ratio <= RUN_TARGET else 'MISSED'})")
    median = statistics.median(r[3] for r in recoveries)
    print(f"\nfault to verified recovery, {len(recoveries)} faults (recsys-checks runbook run ID --execute):")
    for name, runbook, verdict, seconds in recoveries:
        print(f"  {name:<18} {runbook:<22} {verdict:<16} {seconds:5.2f}s")
    print(f"  median {median:.2f}s (target <= {RECOVERY_TARGET:.0f}s: "
          f"{'met' if median <= RECOVERY_TARGET else 'MISSED'}); papermill floor {floor:.2f}s of each")
    print(f"\n(median of {args.repeats} runs after one warm-up for the first table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
