"""`make demo`: a game day on the local stack.

    python scripts/demo.py [--store file|s3] [--out DIR]
    python scripts/demo.py --alerting          (make demo ALERTING=1)

Starts the stack, asks it for one recommendation (evidence that it serves), then for every fault of the stack that
its runbook drills, and then for every runbook no fault names as its own (``production-readiness``,
``hold-changes``, ``stale-artifacts``: each with its first drill on the file store, on a stack reset first):
injects it, runs the runbook that answers it with ``--execute`` exactly as on-call would
(``recsys-checks runbook run ID --execute``), and records the detected cause, the verdict and the seconds from the
start of the run to the verified recovery. Prints one table, leaves the executed notebooks and run records under
``incidents/gameday-<UTC time>/``, stops the stack, and exits 0 only if every scenario ended as its drill expects.

With ``--alerting`` the game day goes through the alerting path instead (``recsys-stack up --alerting``): for every
fault the rules can see, a fresh stack with Prometheus, Alertmanager and the receiver; nobody runs a runbook by hand.
The table shows the seconds from the injection to the alert firing and from the alert to the receiver's diagnosis
(a dry run; its incident page carries the command that applies the plan).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from handbook_site import alert_drills, drills
from recsys_checks.runbooks.spec import load_all
from recsys_stack.faults import FAULTS
from recsys_stack.processes import client_env, read_secrets

TENANT, SURFACE = "demo", "home"


def stack(*args: str) -> None:
    """Run one `recsys-stack` command, showing it as a person would type it."""
    print(f"$ recsys-stack {' '.join(args)}", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    subprocess.run([sys.executable, "-m", "recsys_stack.cli", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def first_recommendation(base_url: str, api_key: str) -> str:
    body = {"surface": SURFACE, "k": 5, "user": {"user_id": "demo-user"}}
    headers = {"X-Org-Id": TENANT, "X-API-Key": api_key, "X-Request-Id": "make-demo"}
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        resp = client.post(f"{base_url}/v1/recommend", json=body, headers=headers)
    resp.raise_for_status()
    items = resp.json().get("items") or []
    if not items:
        raise RuntimeError("the freshly started stack served no items")
    return ", ".join(f"{i['item_id']} ({i['score']})" for i in items)


def recorded_processes(root: Path) -> dict[str, int]:
    try:
        return json.loads((root / "stack.json").read_text()).get("processes") or {}
    except FileNotFoundError:
        return {}


def leftover_processes(started: dict[str, int]) -> dict[str, int]:
    return {name: pid for name, pid in started.items() if _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state not in ("Z", "X")


def scenarios(specs: list) -> list[tuple]:
    """(fault, drill, runbook) for every fault of the stack that its runbook drills on the file store, then for
    every runbook with a drill on the file store that no fault names as its own, its first such drill: so every
    runbook is played, and every picture a runbook draws is in an executed notebook of the game day."""
    out = []
    for fault in FAULTS.values():
        drill = drills.drill_for_fault(specs, fault.name, fault.runbook)
        if drill is not None and "file" in drill.stores:
            out.append((fault, drill, fault.runbook))
    played = {runbook for _, _, runbook in out}
    for spec in specs:
        drill = next((d for d in spec.drills if d.fault in FAULTS and "file" in d.stores), None)
        if spec.id not in played and drill is not None:
            out.append((FAULTS[drill.fault], drill, spec.id))
    return out


def game_day(root: Path, out: Path) -> list[dict]:
    info = json.loads((root / "stack.json").read_text())
    env = drills.client_env(client_env(info, read_secrets(root)))
    specs = load_all()
    rows = []
    for n, (fault, drill, runbook) in enumerate(scenarios(specs), 1):
        row = {"fault": fault.name, "runbook": runbook, "cause": "-", "verdict": "-", "seconds": None,
               "expected": drill.execute.verdict, "ok": False}
        rows.append(row)
        try:
            if runbook != fault.runbook:  # not the fault's own runbook: on the stack as `up` left it (no hold)
                stack("reset", "--root", str(root))
            drills.inject(root, fault.name, TENANT, SURFACE)
            params = drills.drill_params(drill, root, TENANT, SURFACE)
            outcome = drills.run_runbook(runbook, {**params, "reason": f"game day: {fault.name}"}, env,
                                         out / f"{n:02d}-{fault.name}", execute=True, phase="execute")
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            row["verdict"] = f"error: {exc}"
            continue
        finally:
            drills.heal(root)
        row.update(cause=outcome.cause or "-", verdict=outcome.verdict or f"exit {outcome.exit_code}",
                   seconds=outcome.seconds,
                   ok=drills.matches(outcome, drill.execute.verdict, drill.execute.cause))
        mark = "ok " if row["ok"] else "UNEXPECTED"
        print(f"  {mark} {fault.name:<18} -> {runbook:<22} {row['verdict']:<16} {row['cause']:<28} "
              f"{outcome.seconds:5.1f} s", flush=True)
    return rows


def show(rows: list[dict]) -> None:
    width = max([len("DETECTED CAUSE"), *(len(str(r["cause"])) for r in rows)])
    header = f"{'FAULT':<20}  {'RUNBOOK':<22}  {'DETECTED CAUSE':<{width}}  {'VERDICT':<16}  {'RECOVERY':>8}"
    print("\n" + header)
    print("-" * len(header))
    for r in rows:
        seconds = f"{r['seconds']:.1f} s" if r["seconds"] is not None else "-"
        flag = "" if r["ok"] else f"   (expected {r['expected']})"
        print(f"{r['fault']:<20}  {r['runbook']:<22}  {r['cause']:<{width}}  {r['verdict']:<16}  {seconds:>8}{flag}")
    # A recovery is a run that ended mitigated (fixed and verified); one that ended otherwise recovered nothing.
    times = [r["seconds"] for r in rows if r["seconds"] is not None and r["verdict"] == "mitigated"]
    print(f"\n{sum(r['ok'] for r in rows)} of {len(rows)} scenarios ended as expected", end="")
    if times:
        print(f"; median fault-to-verified-recovery {statistics.median(times):.1f} s over the {len(times)} that ended "
              "mitigated (from the start of the runbook run)", end="")
    print()


def alerting_game_day() -> int:
    """Every alerting fault through Prometheus, Alertmanager and the receiver; 0 when each diagnosis is the drill's."""
    from recsys_stack import alerting

    try:
        alerting.preflight(None, alert_drills.operator_env())
    except alerting.AlertingError as exc:
        print(f"demo --alerting cannot start: {exc}", file=sys.stderr)
        return 1
    specs = load_all()
    faults = list(alert_drills.ALERTING_FAULTS)
    print(f"game day through the alerts: {len(faults)} faults, each on a fresh `recsys-stack up --alerting` "
          f"(rules for: {alerting.LOCAL_FOR}, windows {alerting.LOCAL_WINDOW}, scrape and evaluation every "
          f"{alerting.INTERVAL}, group_wait {alerting.GROUP_WAIT}); the receiver diagnoses, nobody runs a runbook",
          flush=True)
    started_at = time.monotonic()
    drills_done = []
    for fault in faults:
        root = Path(tempfile.mkdtemp(prefix=f"recsys-stack-alerting-{fault}-"))
        drill = alert_drills.run_alert_drill(fault, root, TENANT, SURFACE, specs=specs, log=print)
        drills_done.append(drill)
        if drill.ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"  {fault}: UNEXPECTED: {drill.error or drill.row}; logs kept in {root / 'logs'}", file=sys.stderr)

    def sec(value: float | None) -> str:
        return f"{value:.1f} s" if value is not None else "-"

    header = (f"{'FAULT':<18}  {'ALERT':<31}  {'RUNBOOK':<18}  {'DETECTED CAUSE':<22}  {'VERDICT':<16}  "
              f"{'FAULT->ALERT':>12}  {'ALERT->DIAGNOSIS':>16}")
    print("\n" + header)
    print("-" * len(header))
    for d in drills_done:
        row = d.row or {}
        to_diagnosis = None if d.diagnosed is None or d.fired is None else d.diagnosed - d.fired
        flag = "" if d.ok else "   (expected " + " or ".join(f"{r} {v} {c}" for r, v, c in sorted(d.expected)) + ")"
        print(f"{d.fault:<18}  {(row.get('alert') or '/'.join(d.alerts) or '-'):<31}  {row.get('runbook') or '-':<18}  "
              f"{row.get('cause') or '-':<22}  {row.get('verdict') or '-':<16}  {sec(d.fired):>12}  "
              f"{sec(to_diagnosis):>16}{flag}")
    ok = sum(d.ok for d in drills_done)
    print(f"\n{ok} of {len(drills_done)} alerts ended in the diagnosis their drill expects "
          f"({time.monotonic() - started_at:.0f} s in all); every stack is stopped")
    if ok == len(drills_done):
        print("game day ok: every fault raised its alert and the receiver named the broken surface and its cause")
        return 0
    print("game day FAILED", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("file", "s3"), default="file")
    parser.add_argument("--out", type=Path, help="where the incidents go (default incidents/gameday-<UTC time>)")
    parser.add_argument("--alerting", action="store_true",
                        help="through Prometheus, Alertmanager and the receiver: seconds to the alert and to diagnosis")
    args = parser.parse_args(argv)
    if args.alerting:
        return alerting_game_day()

    out = args.out or Path("incidents") / f"gameday-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    root = Path(tempfile.mkdtemp(prefix="recsys-stack-demo-"))
    started_at = time.monotonic()
    ok = False
    rows: list[dict] = []
    try:
        stack("up", "--detach", "--store", args.store, "--root", str(root))
        info = json.loads((root / "stack.json").read_text())
        print(f"the stack serves {TENANT}/{SURFACE}: {first_recommendation(info['base_url'], read_secrets(root)['RECSYS_API_KEY'])}")
        print(f"\ngame day: {len(scenarios(load_all()))} scenarios, each fault answered by a runbook with --execute",
              flush=True)
        rows = game_day(root, out)
        ok = bool(rows) and all(r["ok"] for r in rows)
    except Exception as exc:  # noqa: BLE001 - the demo reports and still stops the stack
        print(f"\ndemo failed: {exc}", file=sys.stderr)
    finally:
        started = recorded_processes(root)
        try:
            stack("down", "--root", str(root))
        except subprocess.CalledProcessError as exc:
            print(f"stopping the stack failed: {exc}", file=sys.stderr)
            ok = False
        left = leftover_processes(started)
        if left:
            print(f"processes still running after down: {left}", file=sys.stderr)
            ok = False
    if rows:
        show(rows)
    print(f"executed notebooks and run records: {out}/   ({time.monotonic() - started_at:.0f} s in all)")
    if ok:
        shutil.rmtree(root, ignore_errors=True)
        print("game day ok: every fault was detected and recovered as its runbook's drill expects; the stack is stopped")
        return 0
    print(f"game day FAILED; the stack's logs are kept in {root / 'logs'}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
