"""``recsys-stack``: start, inspect, publish into and break the local reference stack.

Exit codes: 0 done, 1 the operation failed (a publish failed, a process would not start), 2 bad arguments or a
stack in the wrong state (already running, not running, port taken).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from . import processes
from .formats import parse_time, safe_segment
from .objstore import StoreError, manifest_key
from .processes import StackError
from .publisher import PublishError, runs_dir


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line usage errors of the rest of the CLI (exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is outside 1..65535")
    return value


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day: use YYYY-MM-DD, e.g. 2026-01-02") from None


def _segment(what: str):
    def parse(text: str) -> str:
        try:
            return safe_segment(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = what
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recsys-stack", description="The local reference stack of the RecSys suite.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--root", type=Path, default=Path(processes.DEFAULT_ROOT),
                       help=f"stack root directory (default {processes.DEFAULT_ROOT})")
        return p

    p = add("up", "Start a freshly seeded stack (service, and an S3 server for --store s3).")
    p.add_argument("--port", type=_port, help="service port on 127.0.0.1 (default: a free one)")
    p.add_argument("--store", choices=("file", "s3"), default="file", help="object store (default file)")
    p.add_argument("--detach", action="store_true", help="return once the service is ready instead of staying up")
    p.add_argument("--manifest-ttl", type=_positive_int, default=processes.DEFAULT_TTL_SECONDS, metavar="SECONDS",
                   help=f"service manifest cache TTL (default {processes.DEFAULT_TTL_SECONDS})")
    p.add_argument("--cache-ttl", type=_positive_int, default=processes.DEFAULT_TTL_SECONDS, metavar="SECONDS",
                   help=f"service blob cache TTL (default {processes.DEFAULT_TTL_SECONDS})")
    p.add_argument("--alerting", action="store_true",
                   help="also start traffic, Prometheus (the rules of observability/alerts.yaml with short for: and "
                   "windows), Alertmanager and the alert receiver `recsys-checks alerts serve`, all on 127.0.0.1")
    p.add_argument("--alerts-webhook", metavar="URL",
                   help="with --alerting: Alertmanager delivers to URL (a receiver of your own, bearer token from "
                   "RECSYS_ALERTS_TOKEN) and no receiver is started")
    p.add_argument("--alert-rules", type=Path, metavar="FILE",
                   help="with --alerting: the rule file to derive the local rules from (default "
                   "observability/alerts.yaml)")

    add("down", "Stop every process `up` started (idempotent).")

    p = add("status", "Processes, base URL, and per tenant/surface manifest age and last run.")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("publish", "Publish one day for a tenant/surface, then invalidate the service's popularity cache.")
    p.add_argument("--tenant", type=_segment("tenant"), required=True)
    p.add_argument("--surface", type=_segment("surface"), required=True)
    p.add_argument("--day", type=_day, help="UTC day YYYY-MM-DD (default: the day after the checkpoint and the current window)")
    p.add_argument("--no-invalidate", action="store_true", help="leave the service's caches alone")
    p.add_argument("--fail-at", metavar="STEP[:KIND]",
                   help="make the run fail at blob, validate, record (optionally for one kind, e.g. record:cooc) or "
                   "swap, as a broken pipeline would; the manifest stays as it was")
    p.add_argument("--max-events-per-run", type=_positive_int, metavar="N",
                   help="the suite's max_events_per_run: most raw events a day may have (default: the job's "
                   "configured limit, 1000000)")
    p.add_argument("--max-distinct-items-per-run", type=_positive_int, metavar="N",
                   help="the suite's max_distinct_items_per_run: most distinct items a day may have (default: the "
                   "job's configured limit, 2000000)")
    p.add_argument("--max-users-per-run", type=_positive_int, metavar="N",
                   help="the suite's max_users_per_run: most distinct users the implicit stage counts (default: the "
                   "job's configured limit; none unless configured)")

    p.add_argument("--rebuild-events", action="store_true",
                   help="write the day's raw events afresh first, as when the upstream has fixed and re-sent its data")

    p = add("scheduled-publish", "Publish as a deployment's scheduler does: ask the hold gate "
            "(`recsys-checks hold status`) first and publish only when it answers 0; held (1) or cannot tell (2) "
            "publishes nothing (fail closed).")
    p.add_argument("--tenant", type=_segment("tenant"), required=True)
    p.add_argument("--surface", type=_segment("surface"), required=True)
    p.add_argument("--day", type=_day, help="UTC day YYYY-MM-DD (default: the scheduler's next day)")

    from .faults import FAULTS

    p = add("inject", "Break the running stack (see `recsys-stack faults`).")
    p.add_argument("fault", metavar="FAULT", help="one of: " + ", ".join(FAULTS))
    p.add_argument("--tenant", type=_segment("tenant"), default="demo", help="default demo")
    p.add_argument("--surface", type=_segment("surface"), default="home", help="default home")
    p.add_argument("--latency-ms", type=_milliseconds, metavar="MS",
                   help="slow-store only: the delay added to every S3 request (default 20)")

    p = add("faults", "List the faults and the runbook that answers each.")
    p.add_argument("--json", action="store_true", help="print JSON")

    add("heal", "Undo the infrastructure faults (store-down, not-ready, slow-store) and restore the job's limits.")

    p = add("reset", "Put the running stack back to the state `up` seeded (its snapshot under ROOT/snapshot/), "
            "in about a second: every fault undone, the service restarted with empty caches, the S3 bucket as "
            "seeded. A snapshot from an earlier UTC day is seeded afresh.")
    p.add_argument("--reseed", action="store_true", help="seed afresh (and keep a new snapshot) instead of restoring")

    add("env", "Print the export lines that point recsys-checks at this stack: eval \"$(recsys-stack env)\".")
    return parser


def _out(line: str = "") -> None:
    print(line, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    # In the foreground, Ctrl-C / SIGTERM during startup must also stop what was started so far.
    previous = {} if args.detach else processes.install_stop_handlers()
    try:
        return _up(args)
    except processes.StopRequested:
        _out("stopped before the stack was ready")
        return 0
    finally:
        processes.restore_handlers(previous)


def _up(args: argparse.Namespace) -> int:
    if (args.alerts_webhook or args.alert_rules) and not args.alerting:
        raise StackError("--alerts-webhook and --alert-rules go with --alerting")
    info, procs = processes.up(
        args.root, store=args.store, port=args.port, manifest_ttl=args.manifest_ttl, cache_ttl=args.cache_ttl, log=_out,
        alerting=args.alerting, alerts_webhook=args.alerts_webhook, alert_rules=args.alert_rules,
    )
    _out(f"stack ready at {info['base_url']} (store {info['store']}, root {info['root']})")
    _out(f"  manifests: {info['manifest_template']}")
    if info.get("s3_endpoint"):
        _out(f"  S3 endpoint: {info['s3_endpoint']}")
    alerting = info.get("alerting")
    if alerting:
        _out(f"  Prometheus: {alerting['prometheus_url']} (rules {alerting['rules']})")
        _out(f"  Alertmanager: {alerting['alertmanager_url']} -> {alerting['webhook_url']}")
        if alerting.get("receiver_url"):
            _out(f"  alert receiver: {alerting['receiver_url']}/incidents (incidents in {alerting['incidents_dir']})")
    _out(f"  secrets: {processes.secrets_path(Path(info['root']))}")
    _out(f"point a shell at it with `eval \"$(recsys-stack env --root {args.root})\"`")
    if args.detach:
        _out(f"stop it with `recsys-stack down --root {args.root}`")
        return 0
    return processes.serve_foreground(Path(info["root"]), info, procs, log=_out)


def cmd_down(args: argparse.Namespace) -> int:
    processes.down(args.root, log=_out)
    return 0


def collect_status(root: Path) -> dict:
    """What `status` shows, as a dict."""
    root = Path(root).resolve()
    info = processes.require_stack(root)
    alive = processes.running_processes(info, root)
    procs = {name: {"pid": pid, "alive": name in alive} for name, pid in (info.get("processes") or {}).items()}
    status = {
        "root": str(root),
        "status": "running" if alive.get("service") else info.get("status", "stopped"),
        "store": info.get("store"),
        "base_url": info.get("base_url"),
        "manifest_template": info.get("manifest_template"),
        "s3_endpoint": info.get("s3_endpoint"),
        "alerting": info.get("alerting"),
        "processes": procs,
        "surfaces": [],
    }
    problem = processes.ownership_problem(info, root)
    if problem:  # what stack.json says of processes it cannot prove its own is not this root's state
        status.update(status="not owned", ownership=problem)
    now = datetime.now(UTC)
    store = None
    if alive.get("service") or info.get("store") == "file":
        try:
            store = processes.open_store(info, processes.read_secrets(root))
        except StackError as exc:
            status["store_error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
            status["store_error"] = f"{type(exc).__name__}: {exc}"
    store_down = ""
    try:
        for tenant, surfaces in (info.get("tenants") or {}).items():
            for surface in surfaces:
                row: dict = {"tenant": tenant, "surface": surface}
                if store_down:
                    row["manifest_error"] = "store unavailable"
                elif store is not None:
                    row.update(_manifest_row(store, tenant, surface, now))
                    if row.get("manifest_error", "").startswith(("StoreUnavailable", "NotADirectoryError")):
                        # One unreachable store answer is enough; don't wait for a timeout per surface.
                        store_down = row["manifest_error"]
                        status["store_error"] = store_down
                        row["manifest_error"] = "store unavailable"
                row.update(_last_run(root, tenant, surface))
                status["surfaces"].append(row)
    finally:
        if store is not None:
            store.close()
    return status


def _manifest_row(store, tenant: str, surface: str, now: datetime) -> dict:
    try:
        manifest = json.loads(store.get(manifest_key(tenant, surface)))
        updated = parse_time(manifest["updated_at"])
    except Exception as exc:  # noqa: BLE001 - a broken manifest is exactly what status must show
        return {"manifest_error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    return {"updated_at": manifest["updated_at"], "age_seconds": int((now - updated).total_seconds())}


def _last_run(root: Path, tenant: str, surface: str) -> dict:
    runs = sorted(runs_dir(root, tenant, surface).glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}
    try:
        run = json.loads(runs[-1].read_text())
    except (OSError, ValueError):
        return {"last_run": runs[-1].stem, "last_run_status": "unreadable"}
    row = {"last_run": run.get("run_id", runs[-1].stem), "last_run_status": run.get("status"),
           "last_run_day": run.get("day")}
    if run.get("error"):
        row["last_run_error"] = run["error"]
    return row


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rem = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rem // 60:02d}m" if hours else f"{rem // 60}m{rem % 60:02d}s"


def cmd_status(args: argparse.Namespace) -> int:
    status = collect_status(args.root)
    if args.json:
        _out(json.dumps(status, indent=2))
        return 0
    _out(f"stack {status['status']} at {status['base_url']} (store {status['store']}, root {status['root']})")
    for name, proc in status["processes"].items():
        _out(f"  {name:<12} pid {proc['pid']:<8} {'alive' if proc['alive'] else 'not running'}")
    if status.get("alerting"):
        alerting = status["alerting"]
        _out(f"  alerting: Prometheus {alerting['prometheus_url']}, Alertmanager {alerting['alertmanager_url']}, "
             f"receiver {alerting.get('receiver_url') or alerting['webhook_url']}")
    if status.get("ownership"):
        _out(f"  {status['ownership']}")
    if status.get("store_error"):
        _out(f"  store: {status['store_error']}")
    if status["surfaces"]:
        _out(f"  {'tenant/surface':<16} {'manifest updated_at':<22} {'age':>8}  last run")
    for row in status["surfaces"]:
        updated = row.get("updated_at") or row.get("manifest_error", "-")[:40]
        run = row.get("last_run_status", "-")
        if row.get("last_run_day"):
            run += f" ({row['last_run_day']})"
        if row.get("last_run_error"):
            run += f": {row['last_run_error']}"
        _out(f"  {row['tenant'] + '/' + row['surface']:<16} {updated:<22} {_age(row.get('age_seconds')):>8}  {run}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .faults import FaultContext, check_target

    ctx = FaultContext.load(args.root)
    try:
        check_target(ctx.info, args.tenant, args.surface)
        try:
            run = ctx.publish(args.tenant, args.surface, day=args.day, now=datetime.now(UTC), fail_at=args.fail_at,
                              max_events_per_run=args.max_events_per_run,
                              max_distinct_items_per_run=args.max_distinct_items_per_run,
                              max_users_per_run=args.max_users_per_run, rebuild_events=args.rebuild_events)
        except PublishError as exc:
            output = (exc.run_log or {}).get("output") or f"{exc}\n"
            sys.stderr.write(output)  # the stage lines and the last line, as the suite's binary prints them
            sys.stderr.flush()
            return exc.exit_code  # 1 runtime failure, 2 usage error, as the suite's pipelines exit
        sys.stderr.write(run.get("output") or "")
        _out(f"published {args.tenant}/{args.surface} day {run.get('day', args.day)} (run {run.get('run_id', '?')})")
        if args.no_invalidate:
            _out("service caches left alone (--no-invalidate): it serves the previous version until the TTL expires")
        else:
            ctx.invalidate(args.tenant, args.surface)
            _out(f"invalidated the popularity cache of {args.tenant}/{args.surface}")
        return 0
    finally:
        ctx.close()


def cmd_scheduled_publish(args: argparse.Namespace) -> int:
    """The stack's scheduler: the hold gate first, as a CronJob wrapper would run it, then the publish."""
    import subprocess

    from .processes import client_env, read_secrets, require_stack

    root = Path(args.root).resolve()
    info = require_stack(root)
    env = {**os.environ, **client_env(info, read_secrets(root))}
    import shutil

    # The gate as a deployment runs it: the recsys-checks command, on PATH or installed beside this Python.
    beside = Path(sys.executable).parent / "recsys-checks"
    command = shutil.which("recsys-checks") or (str(beside) if beside.is_file() else "recsys-checks")
    gate = [command, "hold", "status", "--tenant", args.tenant, "--surface", args.surface]
    try:
        answer = subprocess.run(gate, env=env, capture_output=True, text=True, timeout=60, check=False)
        code, said = answer.returncode, (answer.stdout or answer.stderr).strip().splitlines()[:1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        code, said = 2, [f"the gate could not be asked: {exc}"]
    line = said[0] if said else ""
    if code == 1:
        _out(f"held: not publishing {args.tenant}/{args.surface} ({line})")
        return 1
    if code != 0:
        _out(f"the hold gate cannot tell (exit {code}): not publishing {args.tenant}/{args.surface}, as a held "
             f"surface would not be ({line})")
        return 2
    args.fail_at = None
    args.no_invalidate = False
    args.max_events_per_run = args.max_distinct_items_per_run = args.max_users_per_run = None
    args.rebuild_events = False
    return cmd_publish(args)


def cmd_inject(args: argparse.Namespace) -> int:
    from .faults import get_fault, inject

    fault = get_fault(args.fault)
    _out(f"{fault.name}: {inject(args.root, fault.name, args.tenant, args.surface, latency_ms=args.latency_ms)}")
    _out(f"answered by runbook: {fault.runbook}")
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    from .faults import FAULTS

    rows = [f.to_dict() for f in FAULTS.values()]
    if args.json:
        _out(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    rwidth = max(len(r["runbook"]) for r in rows)
    _out(f"{'FAULT':<{width}}  {'RUNBOOK':<{rwidth}}  BREAKS")
    for r in rows:
        _out(f"{r['name']:<{width}}  {r['runbook']:<{rwidth}}  {r['breaks']}")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    import shlex

    info = processes.require_stack(Path(args.root).resolve())
    for name, value in processes.client_env(info, processes.read_secrets(Path(info["root"]))).items():
        _out(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    from .reset import reset

    reset(args.root, reseed=args.reseed, log=_out)
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from .faults import heal

    done = heal(args.root)
    _out("; ".join(done) if done else "nothing to heal")
    return 0


COMMANDS = {
    "up": cmd_up, "down": cmd_down, "status": cmd_status, "publish": cmd_publish,
    "scheduled-publish": cmd_scheduled_publish, "inject": cmd_inject,
    "faults": cmd_faults, "heal": cmd_heal, "reset": cmd_reset, "env": cmd_env,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except StackError as exc:
        print(f"recsys-stack {args.command}: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except StoreError as exc:
        print(
            f"recsys-stack {args.command}: object store: {exc}; check `recsys-stack status --root {args.root}` "
            "(`recsys-stack heal` undoes store-down)",
            file=sys.stderr, flush=True,
        )
        return 1
    except KeyboardInterrupt:
        print(f"recsys-stack {args.command}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - a defect or an unexpected state: one line, never a traceback
        if os.environ.get("RECSYS_STACK_DEBUG"):
            raise
        print(
            f"recsys-stack {args.command}: failed ({type(exc).__name__}: {exc}); check `recsys-stack status --root "
            f"{getattr(args, 'root', processes.DEFAULT_ROOT)}`; re-run with RECSYS_STACK_DEBUG=1 for the traceback",
            file=sys.stderr, flush=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
