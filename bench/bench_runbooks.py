"""Benchmarks of the runbooks, each against a baseline measured in the same run.

- One runbook run (``recsys-checks runbook run empty-recs``, a healthy stack, whole process) against papermill
  running an empty notebook (``papermill empty.ipynb out.ipynb``, whole process): the floor any notebook run pays
  for starting Python, papermill and a kernel. The two take turns. Target: at most 1x the floor.
- The game day's recovery: for every fault of the local stack that its runbook drills on the file store (the
  scenarios of ``make demo``), the seconds from the fault being in place (``recsys-stack inject`` has returned) to
  the end of ``recsys-checks runbook run ID --execute`` with its verdict ``mitigated`` (the fix applied and the
  runbook's own verification passed). Target: a median of 3 s or less over the scenarios that recover; a scenario
  that does not end as its drill expects is a missed target too.

- Drawing: the runbook's notebook (``empty-recs``, a healthy stack: its versions and rules pictures) run by papermill
  as it is, against the same notebook with the pictures turned off by one cell before the run starts
  (``pictures.show`` does nothing: no SVG drawn), taking turns; the difference is what drawing costs. Target: the
  runbook run with its pictures (the first row) stays within 1x the papermill floor, the budget drawing must fit in.

Run with ``make bench`` (or ``python bench/bench_runbooks.py``; ``--only run|recovery|drawing`` for one case).
Prints one table in the format of ``bench_checks.py``, then each scenario; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat

from handbook_site import drills
from recsys_checks.runbooks.spec import load_all
from recsys_stack.faults import FAULTS
from recsys_stack.processes import client_env, read_secrets

RUN_TARGET = 1.0
RECOVERY_TARGET = 3.0
DRAWING_TARGET = 1.0  # the runbook run with its pictures, against the papermill floor
DRAWN_RUNBOOK = "empty-recs"
_PICTURES_ON = "from recsys_checks.runbooks import pictures  # drawn, as in every run"
_PICTURES_OFF = ("from recsys_checks.runbooks import pictures\n"
                 "pictures.show = lambda figure: None  # nothing drawn")
STACK = [sys.executable, "-m", "recsys_stack.cli"]

Row = tuple[str, str, str, str, str, str, str, str]


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=300)
    return time.monotonic() - started, proc.returncode


@contextmanager
def file_stack(work: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A local stack on the file store under ``work``, and the environment that points recsys-checks at it."""
    root = work / "stack"
    subprocess.run([*STACK, "up", "--detach", "--root", str(root)], check=True, capture_output=True,
                   env=drills.client_env({}))
    try:
        info = json.loads((root / "stack.json").read_text())
        yield root, drills.client_env(client_env(info, read_secrets(root)))
    finally:
        subprocess.run([*STACK, "down", "--root", str(root)], capture_output=True, env=drills.client_env({}))


def empty_notebook(work: Path) -> list[str]:
    """The papermill command of the floor: one parameters cell, the kernel every runbook uses."""
    empty = nbformat.v4.new_notebook()
    empty.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    empty.cells = [nbformat.v4.new_code_cell("tenant = 'demo'", metadata={"tags": ["parameters"]})]
    nbformat.write(empty, work / "empty.ipynb")
    return [sys.executable, "-m", "papermill", "--log-level", "ERROR", str(work / "empty.ipynb"),
            str(work / "empty.out.ipynb"), "-p", "tenant", "demo"]


def bench_run(work: Path, env: dict[str, str], repeats: int) -> tuple[float, float, list[str]]:
    """Medians of the papermill floor and of a healthy runbook run, taking turns after one warm-up of each."""
    papermill = empty_notebook(work)
    floors, runs, failures = [], [], []
    for n in range(repeats + 1):
        floors.append(_timed(papermill, env, work)[0])
        seconds, code = _timed([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "empty-recs",
                                "--out", str(work / f"healthy-{n}")], env, work)
        runs.append(seconds)
        if code != 0:
            failures.append(f"runbook run empty-recs on the healthy stack exited {code} (run {n})")
    return statistics.median(floors[1:]), statistics.median(runs[1:]), failures


def scenarios() -> list[tuple]:
    """(fault, drill) for every fault of the stack that its runbook drills on the file store, as ``make demo``."""
    specs = load_all()
    out = []
    for fault in FAULTS.values():
        drill = drills.drill_for_fault(specs, fault.name, fault.runbook)
        if drill is not None and "file" in drill.stores:
            out.append((fault, drill))
    return out


def bench_recovery(root: Path, work: Path, env: dict[str, str]) -> list[dict]:
    """Each scenario: inject, then time from the fault being in place to the end of the ``--execute`` run."""
    done = []
    for fault, drill in scenarios():
        drills.inject(root, fault.name)
        in_place = time.monotonic()
        try:
            outcome = drills.run_runbook(fault.runbook, drills.drill_params(drill, root), env,
                                         work / f"recovery-{fault.name}", execute=True, phase="execute")
            seconds = time.monotonic() - in_place
        finally:
            drills.heal(root)
        done.append({"fault": fault.name, "runbook": fault.runbook, "verdict": outcome.verdict or
                     f"exit {outcome.exit_code}", "expected": drill.execute.verdict, "seconds": seconds,
                     "ok": drills.matches(outcome, drill.execute.verdict, drill.execute.cause)})
    return done


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
            seconds, _ = _timed([sys.executable, "-m", "papermill", "--log-level", "ERROR", str(nb), str(out),
                                 "-p", "tenant", "demo", "-p", "surface", "home"], env, work)
            if n:
                turns[way].append(seconds)
                turns[f"drawn_{way}"].append(_pictures_in(out))
    return turns


def drawing_row(turns: dict[str, list], floor: float, run: float, rows: list[Row]) -> list[str]:
    """The drawing row (the notebook with its pictures against the same notebook without) and what it missed: the
    runbook run with its pictures must stay within the papermill floor, and a picture must have been drawn."""
    on, off = statistics.median(turns["on"]), statistics.median(turns["off"])
    drawn = f"{min(turns['drawn_on'])}-{max(turns['drawn_on'])} pictures"
    rows.append((f"drawing: {DRAWN_RUNBOOK} notebook, papermill ({drawn}, {on - off:+.2f} s a run)", "file",
                 "pictures off", f"{off:.2f} s", "pictures drawn", f"{on:.2f} s", f"{on / off:.2f}x",
                 f"run <= {DRAWING_TARGET:g}x floor"))
    failures = []
    if min(turns["drawn_on"]) == 0 or max(turns["drawn_off"]) > 0:
        failures.append("the drawing row's runs did not draw as set (pictures on: some drew none, or off: some drew)")
    if run / floor > DRAWING_TARGET:
        failures.append(f"the runbook run with its pictures took {run / floor:.2f}x the papermill floor "
                        f"(target {DRAWING_TARGET:g}x)")
    return failures


def print_table(rows: list[Row]) -> None:
    header = ("benchmark", "store", "baseline", "median", "measured", "median", "ratio", "target")
    lines = [header, tuple("-" * len(h) for h in header), *rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("run", "recovery", "drawing"), help="run one of the three cases")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    failures: list[str] = []
    recoveries: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-runbooks-") as tmp, file_stack(Path(tmp)) as (root, env):
        work = Path(tmp)
        floor, run, failed = bench_run(work, env, args.repeats if args.only != "recovery" else 1)
        if args.only != "recovery":
            failures += failed
            rows.append(("runbook run, healthy stack (whole process)", "file", "papermill, empty notebook",
                         f"{floor:.2f} s", "runbook run empty-recs", f"{run:.2f} s", f"{run / floor:.2f}x",
                         f"<= {RUN_TARGET:g}x"))
            if run / floor > RUN_TARGET:
                failures.append(f"a runbook run took {run / floor:.2f}x papermill's empty notebook "
                                f"(target {RUN_TARGET:g}x)")
        if args.only in (None, "drawing"):
            failures += drawing_row(drawing_turns(work, env, args.repeats), floor, run, rows)
        if args.only in (None, "recovery"):
            recoveries = bench_recovery(root, work, env)
    if recoveries:
        failures += recovery_rows(recoveries, floor, rows)
    print_table(rows)
    for r in recoveries:
        flag = "" if r["ok"] else f"   UNEXPECTED (the drill expects {r['expected']})"
        print(f"  {r['fault']:<22} {r['runbook']:<22} {r['verdict']:<16} {r['seconds']:5.2f} s{flag}")
    print(f"\n(medians of {args.repeats} runs after one warm-up, the two taking turns; a recovery is one run per "
          "scenario; ratio = measured / baseline, lower is better)")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    return 1 if failures else 0


def recovery_rows(recoveries: list[dict], floor: float, rows: list[Row]) -> list[str]:
    """The game day's row (the median over the scenarios that recovered) and what it missed."""
    failures = [f"{r['fault']} ended {r['verdict']}, not as its drill expects ({r['expected']})"
                for r in recoveries if not r["ok"]]
    mitigated = [r["seconds"] for r in recoveries if r["verdict"] == "mitigated"]
    if not mitigated:
        return [*failures, "no scenario recovered"]
    median = statistics.median(mitigated)
    rows.append((f"game day, fault to verified recovery ({len(mitigated)} of {len(recoveries)} scenarios "
                 "mitigated)", "file", "papermill, empty notebook", f"{floor:.2f} s", "median recovery",
                 f"{median:.2f} s", f"{median / floor:.2f}x", f"<= {RECOVERY_TARGET:g} s"))
    if median > RECOVERY_TARGET:
        failures.append(f"the game day's median recovery took {median:.2f} s (target {RECOVERY_TARGET:g} s)")
    return failures


if __name__ == "__main__":
    sys.exit(main())
