"""Benchmarks of the runbooks, each against a baseline measured in the same run.

- One runbook run (``recsys-checks runbook run empty-recs``, a healthy stack, whole process) against papermill
  running an empty notebook (``papermill empty.ipynb out.ipynb``, whole process): the floor any notebook run pays
  for starting Python, papermill and a kernel. Target: at most 1.5x the floor.
- Fault to verified recovery: for every fault of the local stack, the seconds from the start of
  ``recsys-checks runbook run ID --execute`` to its verdict ``mitigated`` (the runbook's own verification passed).
  Target: a median of 3 s or less.

- Drawing: the runbook's notebook (``empty-recs``, a healthy stack: its versions and rules pictures) run by papermill
  as it is, against the same notebook with the pictures turned off by one cell before the run starts
  (``pictures.show`` and ``pictures.warm_up`` do nothing: no matplotlib, no SVG), taking turns; the difference is what drawing costs. Target: the runbook run with its pictures
  (the first row) stays within 1x the papermill floor, the budget drawing must fit in.

Run with ``make bench`` (or ``python bench/bench_runbooks.py``; ``--only drawing`` for the drawing row alone).
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
DRAWING_TARGET = 1.0  # the runbook run with its pictures, against the papermill floor
DRAWN_RUNBOOK = "empty-recs"
_PICTURES_ON = "from recsys_checks.runbooks import pictures  # drawn, as in every run"
_PICTURES_OFF = ("from recsys_checks.runbooks import pictures\n"
                 "pictures.show = lambda figure: None  # nothing drawn\n"
                 "pictures.warm_up = lambda functions: None  # nor matplotlib imported ahead")


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


def _notebook_with(work: Path, name: str, source: str) -> Path:
    """The runbook's notebook with ``source`` as a cell just before its setup cell (which starts the run)."""
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / f"{DRAWN_RUNBOOK}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "setup" in (c.metadata.get("tags") or []))
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    path = work / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _pictures_in(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("recsys-picture-" in str((o.get("data") or {}).get("image/svg+xml", ""))
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def drawing_turns(work: Path, env: dict[str, str], repeats: int) -> dict[str, list]:
    """Papermill over the runbook's notebook with and without its pictures, taking turns after one warm-up each:
    the seconds of each run and the pictures each executed notebook holds."""
    turns: dict[str, list] = {"on": [], "off": [], "drawn_on": [], "drawn_off": []}
    for n in range(repeats + 1):
        for way, source in (("off", _PICTURES_OFF), ("on", _PICTURES_ON)):
            nb, out = _notebook_with(work, f"drawing-{way}", source), work / f"drawing-{way}-{n}.out.ipynb"
            seconds = _timed([sys.executable, "-m", "papermill", "--log-level", "ERROR", str(nb), str(out),
                              "-p", "tenant", "demo", "-p", "surface", "home"], env, work)
            if n:
                turns[way].append(seconds)
                turns[f"drawn_{way}"].append(_pictures_in(out))
    return turns


def show_drawing(turns: dict[str, list], floor: float, run: float) -> None:
    on, off = statistics.median(turns["on"]), statistics.median(turns["off"])
    print(f"\n{'benchmark':<44}  {'baseline':<26}  {'median':>8}  {'measured':<26}  {'median':>8}  {'ratio':>6}")
    print(f"{'drawing: ' + DRAWN_RUNBOOK + ' notebook, papermill':<44}  {'pictures off':<26}  {off:>7.2f}s  "
          f"{'pictures drawn':<26}  {on:>7.2f}s  {on / off:>5.2f}x")
    drawn = f"{min(turns['drawn_on'])} to {max(turns['drawn_on'])}"
    print(f"  drawing costs {on - off:+.2f}s a run ({drawn} pictures drawn a run, {max(turns['drawn_off'])} without)")
    ok = run / floor <= DRAWING_TARGET and min(turns["drawn_on"]) > 0
    print(f"  runbook run {DRAWN_RUNBOOK} with its pictures {run:.2f}s, {run / floor:.2f}x the papermill floor "
          f"{floor:.2f}s (target <= {DRAWING_TARGET:g}x: {'met' if ok else 'MISSED'}); drawing is "
          f"{(on - off) / floor:.0%} of the floor")
    if not ok:
        print(f"TARGET MISSED: the runbook run with its pictures took {run / floor:.2f}x the papermill floor "
              f"(target {DRAWING_TARGET:g}x), or no picture was drawn")


def run_against_floor(work: Path, env: dict[str, str], repeats: int) -> tuple[float, float]:
    """(papermill floor, runbook run): medians of ``repeats`` turns after one warm-up each."""
    empty = nbformat.v4.new_notebook()
    empty.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    empty.cells = [nbformat.v4.new_code_cell("tenant = 'demo'", metadata={"tags": ["parameters"]})]
    nbformat.write(empty, work / "empty.ipynb")
    papermill = [sys.executable, "-m", "papermill", "--log-level", "ERROR", str(work / "empty.ipynb"),
                 str(work / "empty.out.ipynb"), "-p", "tenant", "demo"]
    floors, runs = [], []
    for n in range(repeats + 1):  # the first of each is a warm-up
        floors.append(_timed(papermill, env, work))
        runs.append(_timed([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", DRAWN_RUNBOOK,
                            "--out", str(work / f"healthy-{n}")], env, work))
    return statistics.median(floors[1:]), statistics.median(runs[1:])


def recover_every_fault(root: Path, work: Path, env: dict[str, str]) -> list[tuple]:
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
    return recoveries


def show_run(floor: float, run: float) -> None:
    ratio = run / floor
    print(f"{'benchmark':<44}  {'baseline':<26}  {'median':>8}  {'measured':<26}  {'median':>8}  {'ratio':>6}")
    print(f"{'runbook run, healthy stack (whole process)':<44}  {'papermill, empty notebook':<26}  "
          f"{floor:>7.2f}s  {'runbook run ' + DRAWN_RUNBOOK:<26}  {run:>7.2f}s  {ratio:>5.2f}x  "
          f"(target <= {RUN_TARGET}x: {'met' if ratio <= RUN_TARGET else 'MISSED'})")


def show_recoveries(recoveries: list[tuple], floor: float) -> None:
    median = statistics.median(r[3] for r in recoveries)
    print(f"\nfault to verified recovery, {len(recoveries)} faults (recsys-checks runbook run ID --execute):")
    for name, runbook, verdict, seconds in recoveries:
        print(f"  {name:<18} {runbook:<22} {verdict:<16} {seconds:5.2f}s")
    print(f"  median {median:.2f}s (target <= {RECOVERY_TARGET:.0f}s: "
          f"{'met' if median <= RECOVERY_TARGET else 'MISSED'}); papermill floor {floor:.2f}s of each")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("drawing",), help="the runbook run and its drawing, no recoveries")
    args = parser.parse_args(argv)
    recoveries: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-runbooks-") as tmp:
        work = Path(tmp)
        root = work / "stack"
        stack = [sys.executable, "-m", "recsys_stack.cli"]
        subprocess.run([*stack, "up", "--detach", "--root", str(root)], check=True, capture_output=True,
                       env=drills.client_env({}))
        try:
            info = json.loads((root / "stack.json").read_text())
            env = drills.client_env(client_env(info, read_secrets(root)))
            floor, run = run_against_floor(work, env, args.repeats)
            drawing = drawing_turns(work, env, args.repeats)
            if args.only != "drawing":
                recoveries = recover_every_fault(root, work, env)
        finally:
            subprocess.run([*stack, "down", "--root", str(root)], capture_output=True, env=drills.client_env({}))

    show_run(floor, run)
    show_drawing(drawing, floor, run)
    if recoveries:
        show_recoveries(recoveries, floor)
    print(f"\n(median of {args.repeats} runs after one warm-up for the first two tables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
