"""``recsys-checks alerts serve``: the command line of the Alertmanager receiver (:mod:`recsys_checks.alerts`).

Only the command line is here (the CLI reference is generated from it, so it imports nothing heavy); the server is
imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from recsys_checks.cli.numbers import count, seconds

DEFAULT_LISTEN = "127.0.0.1:9097"


def add_parser(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``alerts serve`` to the ``recsys-checks`` subcommands."""
    alerts = sub.add_parser("alerts", help="the Alertmanager receiver: a dry-run diagnosis with every alert")
    asub = alerts.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=parser_class)
    p = asub.add_parser(
        "serve", help="receive Alertmanager's webhook, triage, dry-run the matching runbooks, keep the incidents",
        epilog="the bearer token comes from RECSYS_ALERTS_TOKEN only (never a flag); RECSYS_ALERTS_NOTIFY_URL, when "
               "set, gets a Slack-shaped message per incident. Exit codes: 0 stopped cleanly (SIGTERM, Ctrl-C), "
               "2 bad configuration (no token, a bad --listen, an --out that cannot be written or that another "
               "receiver serves, runbook specs that cannot be read, an address in use), 1 an internal error")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}: loopback; port 0 picks a free one)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where incidents are kept: DIR/<incident id>/ with the alert, run records and notebooks")
    p.add_argument("--workers", type=count(1, 64), default=2, metavar="N",
                   help="incidents diagnosed at once (default 2; each runbook run starts a notebook kernel)")
    p.add_argument("--queue-size", type=count(1, 100_000), default=100, metavar="N",
                   help="incidents waiting for a worker (default 100); beyond it an incident is recorded not-run "
                        "(queue full) and runs when the alert is notified again with room in the queue")
    p.add_argument("--max-surfaces", type=count(1, 1000), default=3, metavar="N",
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
    p.add_argument("--run-timeout", type=count(10, 86_400), default=900, metavar="SECONDS",
                   help="longest one runbook run may take before it is stopped (default 900)")
    p.add_argument("--triage-timeout", type=count(5, 3600), default=120, metavar="SECONDS",
                   help="longest the fleet freshness scan, or one surface's probe, may take (default 120)")
    p.add_argument("--max-probes", type=count(1, 100_000), default=200, metavar="N",
                   help="surfaces the triage probes per alert (default 200); surfaces beyond are unknown, not "
                        "healthy, and the incident says so")
    p.add_argument("--triage-ttl", type=seconds, default=30.0, metavar="SECONDS",
                   help="alerts of one kind arriving within this many seconds share one triage (default 30; 0: "
                        "every incident triages afresh)")
    p.add_argument("--max-body", type=count(1024, 256 * 1024 * 1024), default=4 * 1024 * 1024, metavar="BYTES",
                   help="largest webhook body accepted (default 4 MiB); a larger one is 413")
    p.add_argument("--external-url", default="", metavar="URL",
                   help="the receiver's address as on-call reaches it, for the incident links in notifications "
                        "(default: http://HOST:PORT of --listen)")
    p.add_argument("--checks-command", default="", metavar="COMMAND",
                   help="what the receiver runs as recsys-checks: specs, triage and runs (default: the one "
                        "installed beside this interpreter, else python -m recsys_checks.cli)")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from recsys_checks.alerts.server import serve

    return serve(args)
