"""``recsys-checks alerts serve``: an Alertmanager receiver that answers every alert with a diagnosis.

An alert arrives (Alertmanager's webhook, version 4, with a bearer token), is matched to the runbooks whose spec
lists it under ``alerts:``, the surfaces behind it are found (the suite's alerts carry no tenant or surface label:
a fleet freshness scan, a probe of every published surface), and each matching runbook runs as a **dry run** for the
worst surfaces found broken. Every incident keeps the alert, the run records and the executed notebooks rendered to
HTML under ``--out``; ``GET /incidents`` lists them.

This module only defines the command line (the CLI reference is generated from it, so it imports nothing heavy);
the server is imported when the command runs. The receiver drives ``recsys-checks`` through its stable command line
as subprocesses (:mod:`recsys_checks.alerts.checks`), never with ``--execute``.
"""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9097"


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``alerts serve`` to the ``recsys-checks`` subcommands."""
    alerts = sub.add_parser("alerts", help="the Alertmanager receiver: a dry-run diagnosis with every alert")
    asub = alerts.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=parser_class)
    p = asub.add_parser(
        "serve", help="receive Alertmanager's webhook, triage, dry-run the matching runbooks, keep the incidents",
        epilog="the bearer token comes from RECSYS_ALERTS_TOKEN only (never a flag); RECSYS_ALERTS_NOTIFY_URL, when "
               "set, gets a Slack-shaped message per incident. Exit codes: 0 stopped cleanly (SIGTERM, Ctrl-C), "
               "2 bad configuration (no token, a bad --listen, an --out that cannot be written, runbook specs that "
               "cannot be read, an address in use), 1 an internal error")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}: loopback; port 0 picks a free one)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where incidents are kept: DIR/<incident id>/ with the alert, run records and notebooks")
    p.add_argument("--workers", type=_count(1, 64), default=2, metavar="N",
                   help="incidents diagnosed at once (default 2; each runbook run starts a notebook kernel)")
    p.add_argument("--queue-size", type=_count(1, 100_000), default=100, metavar="N",
                   help="incidents waiting for a worker (default 100); beyond it an incident is recorded not-run "
                        "(queue full) and runs when the alert is notified again with room in the queue")
    p.add_argument("--max-surfaces", type=_count(1, 1000), default=3, metavar="N",
                   help="surfaces an alert runs its runbooks for, worst first (default 3); the others found broken "
                        "are listed in the incident with the command to run by hand")
    p.add_argument("--tenant-label", default="", metavar="LABEL",
                   help="alert label naming the tenant (default: none; the suite's alerts carry none). With "
                        "--surface-label too, an alert carrying both is run for that surface without triage; "
                        "with the tenant alone, the triage looks at that tenant only")
    p.add_argument("--surface-label", default="", metavar="LABEL", help="alert label naming the surface (default: none)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="[RUNBOOK:]NAME=VALUE",
                   help="a runbook parameter to pass on every run (repeatable), e.g. -p max_age=48h or "
                        "-p stale-manifest:user_id=probe; passed only to runbooks that declare it. tenant, surface, "
                        "execute, plan_id and confirm are the receiver's")
    p.add_argument("--run-timeout", type=_count(10, 86_400), default=900, metavar="SECONDS",
                   help="longest one runbook run may take before it is stopped (default 900)")
    p.add_argument("--triage-timeout", type=_count(5, 3600), default=120, metavar="SECONDS",
                   help="longest the fleet freshness scan, or one surface's probe, may take (default 120)")
    p.add_argument("--max-probes", type=_count(1, 100_000), default=200, metavar="N",
                   help="surfaces the triage probes per alert (default 200); surfaces beyond are unknown, not "
                        "healthy, and the incident says so")
    p.add_argument("--triage-ttl", type=_seconds, default=30.0, metavar="SECONDS",
                   help="alerts of one kind arriving within this many seconds share one triage (default 30; 0: "
                        "every incident triages afresh)")
    p.add_argument("--max-body", type=_count(1024, 256 * 1024 * 1024), default=4 * 1024 * 1024, metavar="BYTES",
                   help="largest webhook body accepted (default 4 MiB); a larger one is 413")
    p.add_argument("--external-url", default="", metavar="URL",
                   help="the receiver's address as on-call reaches it, for the incident links in notifications "
                        "(default: http://HOST:PORT of --listen)")
    p.add_argument("--checks-command", default="", metavar="COMMAND",
                   help="what the receiver runs as recsys-checks: specs, triage and runs (default: the one "
                        "installed beside this interpreter, else python -m recsys_checks.cli)")
    p.set_defaults(run=_serve)


def _count(low: int, high: int):
    def parse(value: str) -> int:
        try:
            number = int(value) if value.isascii() and value.strip().isdigit() else -1
        except ValueError:
            number = -1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from {low} to {high}")
        return number

    parse.__name__ = "number"
    return parse


def _seconds(value: str) -> float:
    try:
        number = float(value) if value.isascii() else -1.0
    except ValueError:
        number = -1.0
    if not 0 <= number <= 86_400:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds from 0 to 86400")
    return number


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    return serve(args)
