"""``recsys-checks``: read-only checks and safe actions against a RecSys deployment.

Exit codes (:data:`EXIT_CODES`): 0 healthy / done, 1 check failed or not recovered, 2 bad input or configuration or
the target could not be reached, 3 conflict (the world changed since the plan; nothing was changed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from recsys_checks.cli import numbers, progress_display
from recsys_checks.cli.output import emit, emit_stream
from recsys_checks.cli.receiver import add_parser as _add_alerts
from recsys_checks.core import credentials, progress
from recsys_checks.core.errors import BadInput, ChecksError, Conflict, Unhealthy
from recsys_checks.core.results import exit_code
from recsys_checks.judge.auditlog import MAX_AUDIT_RECORDS
from recsys_checks.judge.registry.artifact import KINDS
from recsys_checks.judge.registry.freshness import DEFAULT_WORKERS
from recsys_checks.reach.settings import Target, parse_duration, safe_segment


class Streamed(list):
    """Results whose output the command already wrote while it ran (a fleet's rows are streamed, not held)."""


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error style of the rest of the CLI (and its exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n  (run `{self.prog} --help` for usage)\n")


def _segment(what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        try:
            return safe_segment(value, what)
        except ChecksError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = what
    return parse


def _duration(value: str):
    try:
        return parse_duration(value)
    except ChecksError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _targets(value: str) -> list[str]:
    from recsys_checks.levers.cache import parse_targets

    try:
        return parse_targets(value)
    except ChecksError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _weights(value: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in value.split(","):
        name, sep, weight = part.partition("=")
        try:
            number = float(weight)
        except ValueError:
            number = -1.0
        if not sep or not name.strip() or not number >= 0 or number == float("inf"):
            raise argparse.ArgumentTypeError(f"bad weights {value!r}: use VARIANT=WEIGHT pairs, e.g. control=1,treatment=1")
        out[name.strip()] = number
    if not sum(out.values()) > 0:
        raise argparse.ArgumentTypeError(f"bad weights {value!r}: at least one weight must be above 0")
    return out


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("target (flags override the environment)")
    g.add_argument("--base-url", help="service URL (env RECSYS_BASE_URL)")
    g.add_argument("--manifest-template", help="manifest URI template (env RECSYS_ARTIFACT_MANIFEST_TEMPLATE)")
    g.add_argument("--s3-endpoint", help="S3 API endpoint for s3:// URIs (env RECSYS_ARTIFACT_S3_ENDPOINT)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    return common


def _tenant(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--tenant", required=required, type=_segment("tenant"), help="tenant id, e.g. demo")


def _surface(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--surface", required=required, type=_segment("surface"), help="surface, e.g. home")


def _version_choice(p: argparse.ArgumentParser, previous_help: str) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", metavar="VERSION",
                       help="the version to go back to: full hash or a unique prefix of 8+ hex (see the history "
                       "command); repeating the command is then a no-op")
    which.add_argument("--previous", action="store_true", help=previous_help)


def _execute(p: argparse.ArgumentParser) -> None:
    p.add_argument("--execute", action="store_true", help="apply the plan (default: dry-run, nothing is changed)")
    p.add_argument("--plan-id", metavar="ID",
                   help="with --execute: apply only if the fresh plan has this id (the 12+ hex digits a reviewed dry "
                   "run printed after 'plan'); otherwise exit 3 and change nothing")
    p.add_argument("--confirm", metavar="DEPLOYMENT",
                   help="the deployment's name (RECSYS_DEPLOYMENT), required with --execute on a deployment marked "
                   "protected (RECSYS_DEPLOYMENT_PROTECTED)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="recsys-checks",
        description="Read-only checks and safe actions for a RecSys deployment. Actions are dry-run unless "
        "--execute is given.",
        epilog="exit codes: 0 healthy/done, 1 check failed or not recovered, 2 bad input or configuration, or "
        "the target could not be reached, 3 conflict (the world changed since the plan)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    _add_health(sub, common)
    _add_manifest(sub, common)
    _add_freshness(sub, common)
    _add_recs(sub, common)
    _add_documents(sub, common)
    _add_cache(sub, common)
    _add_timeline(sub, common)
    _add_runbook(sub)
    _add_eval(sub)
    _add_hold(sub, common)
    _add_alerts(sub, _Parser)  # `alerts serve`; its server is imported only when it runs
    return parser


def _add_health(sub: Any, common: argparse.ArgumentParser) -> None:
    """`health`."""
    p = sub.add_parser("health", parents=[common], help="liveness, readiness, dependencies and key metrics")
    p.set_defaults(run=_health)


def _add_manifest(sub: Any, common: argparse.ArgumentParser) -> None:
    """`manifest status|history|rollback`."""
    manifest = sub.add_parser("manifest", help="the current manifest, its history, rollback")
    msub = manifest.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    p = msub.add_parser("status", parents=[common], help="validate the current manifest and everything it names")
    _tenant(p), _surface(p)
    p.add_argument("--max-age", type=_duration, default=parse_duration("26h"),
                   help="oldest acceptable updated_at (default 26h: a daily publish plus 2h of slack)")
    p.set_defaults(run=_manifest_status)
    p = msub.add_parser("history", parents=[common], help="published versions, newest first, with rollback targets")
    _tenant(p), _surface(p)
    p.add_argument("--kind", choices=KINDS, help="only this artifact kind")
    p.set_defaults(run=_manifest_history)
    p = msub.add_parser("rollback", parents=[common], help="repoint the manifest to a previous version (plan first)")
    _tenant(p), _surface(p)
    p.add_argument("--kind", choices=KINDS, help="only move this kind (default: every kind the version applies to)")
    _version_choice(p, "per kind, the newest valid version older than the current one (each run steps back "
                       "once more)")
    _execute(p)
    p.add_argument("--reason", default="", help="why, for the audit record")
    p.add_argument("--invalidate-cache", action="store_true",
                   help="with --execute and a service configured: also invalidate the service's popularity cache "
                   "for the surface (audited), so that it serves the rolled-back version now, not after its TTL")
    p.set_defaults(run=_manifest_rollback)


def _add_freshness(sub: Any, common: argparse.ArgumentParser) -> None:
    """`freshness`."""
    p = sub.add_parser("freshness", parents=[common], help="staleness of every (tenant, surface) in the registry")
    p.add_argument("--max-age", type=_duration, default=parse_duration("26h"), help="default 26h")
    _tenant(p, required=False)
    p.add_argument("--deep", action="store_true",
                   help="also validate every blob each manifest names (reads every blob; default: manifests only)")
    p.add_argument("--workers", type=numbers.positive, default=DEFAULT_WORKERS,
                   help=f"manifests fetched at once from an S3 store (default {DEFAULT_WORKERS}; a file store is "
                   "read in one thread)")
    p.add_argument("--jsonl", action="store_true",
                   help="print one JSON line per surface as it is checked, then one line with the result")
    p.set_defaults(run=_freshness)


def _add_recs(sub: Any, common: argparse.ArgumentParser) -> None:
    """`recs probe`, `recs clients`."""
    recs = sub.add_parser("recs", help="recommendation probes")
    rsub = recs.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    p = rsub.add_parser("probe", parents=[common],
                        help="request recommendations, classify an empty or failing answer, compare with the manifest")
    _tenant(p), _surface(p)
    p.add_argument("--user-id", default="runbook-probe", help="user id of the probe request")
    p.add_argument("-k", type=int, default=10, help="number of items to ask for (1..200)")
    p.set_defaults(run=_recs_probe)
    p = rsub.add_parser("clients", parents=[common],
                        help="ask as every client asks (without and with anchors, per segment) and judge each answer "
                             "against what the manifest publishes")
    _tenant(p), _surface(p)
    p.add_argument("--user-id", default="runbook-probe", help="user id of the requests")
    p.add_argument("-k", type=int, default=10, help="number of items the surface asks for (1..200)")
    p.set_defaults(run=_recs_clients)


def _add_documents(sub: Any, common: argparse.ArgumentParser) -> None:
    """`config` and `rules`: show, history, revert."""
    for kind in ("config", "rules"):
        doc = sub.add_parser(kind, help=f"the tenant's {kind}: show, history, revert")
        dsub = doc.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
        p = dsub.add_parser("show", parents=[common], help=f"the current {kind} document and its version")
        _tenant(p)
        p.set_defaults(run=_doc_show, kind=kind)
        p = dsub.add_parser("history", parents=[common], help=f"who changed the {kind}, when, from which version")
        _tenant(p)
        p.add_argument("--limit", type=numbers.positive, default=50, help="entries to show (default 50)")
        p.set_defaults(run=_doc_history, kind=kind)
        p = dsub.add_parser("revert", parents=[common], help=f"put a previous {kind} version back (plan first)",
                            epilog="our audit record goes to the registry; when none is configured "
                                   "(RECSYS_ARTIFACT_MANIFEST_TEMPLATE unset) or it cannot be read or written, to "
                                   "RECSYS_AUDIT_DIR, else the per-user state folder (on Linux ~/.local/state/recsys-checks; "
                                   "the output says where and why)")
        _tenant(p)
        _version_choice(p, f"the newest {kind} version that appeared in the audit log before the current one "
                           "(each run steps back once more)")
        _execute(p)
        p.add_argument("--reason", default="", help="why, for the audit record")
        p.add_argument("--full-diff", action="store_true",
                       help="list every changed field of the document, not only the readable change (rules added "
                            "and removed, values before → after); --json always has both")
        p.set_defaults(run=_doc_revert, kind=kind)


def _add_cache(sub: Any, common: argparse.ArgumentParser) -> None:
    """`cache invalidate`."""
    cache = sub.add_parser("cache", help="the service's caches")
    csub = cache.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    p = csub.add_parser("invalidate", parents=[common], help="invalidate popularity, config and/or rules caches")
    _tenant(p), _surface(p, required=False)
    p.add_argument("--targets", type=_targets, required=True, help="comma-separated: popularity,config,rules")
    _execute(p)
    p.add_argument("--reason", default="", help="why, for the audit record")
    p.set_defaults(run=_cache_invalidate)


def _add_timeline(sub: Any, common: argparse.ArgumentParser) -> None:
    """`timeline`."""
    p = sub.add_parser("timeline", parents=[common], help="what was shipped, when, by whom and why")
    _tenant(p), _surface(p, required=False)
    p.add_argument("--since", type=_duration, default=parse_duration("7d"), help="how far back (default 7d)")
    p.add_argument("--max-audit-records", type=numbers.positive, default=MAX_AUDIT_RECORDS, metavar="N",
                   help=f"read at most the newest N of our audit records per scope (a surface, or tenant-wide) "
                   f"within --since (default {MAX_AUDIT_RECORDS:,}); older ones are pruned by name before any is "
                   "read, and the result says how many the cap left out")
    p.set_defaults(run=_timeline)


def _add_runbook(sub: Any) -> None:
    """`runbook list|show|run`."""
    rb = sub.add_parser("runbook", help="list, show and run the executable runbooks")
    bsub = rb.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    p = bsub.add_parser("list", help="every runbook with its layer and the faults its drills answer")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    p.set_defaults(run=_runbook_list)
    p = bsub.add_parser("show", help="a runbook's symptoms, parameters, steps and commands")
    p.add_argument("id", metavar="ID", help="runbook id, e.g. empty-recs")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    p.set_defaults(run=_runbook_show)
    p = bsub.add_parser("run", help="execute a runbook's notebook (dry run unless --execute) and write its run record",
                        epilog=_run_epilog())
    p.add_argument("id", metavar="ID", help="runbook id, e.g. empty-recs")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", type=_param,
                   help="set a parameter (repeatable), e.g. -p tenant=demo -p surface=home")
    p.add_argument("--execute", action="store_true", help="let mutating steps apply their plan (default: dry run)")
    p.add_argument("--reason", help="why, for the audit records of any change (the same as -p reason=TEXT)")
    p.add_argument("--plan-id", metavar="ID", help="apply the fix only if its plan still has this id, as printed by "
                   "the dry run (the same as -p plan_id=ID)")
    p.add_argument("--confirm", metavar="DEPLOYMENT", help="on a protected deployment, its name, to let --execute "
                   "change it (the same as -p confirm=DEPLOYMENT)")
    p.add_argument("--out", metavar="DIR", help="where the executed notebook and the run record go (default "
                   "incidents/<UTC time>-ID), and, without a registry or RECSYS_AUDIT_DIR, the audit records of "
                   "config and rules reverts")
    p.add_argument("--timeout", type=numbers.positive, default=600, metavar="SECONDS",
                   help="longest a single step may run (default 600)")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.set_defaults(run=_runbook_run)


def _run_epilog() -> str:
    """`runbook run --help`'s epilog: every verdict with its exit code, from the verdict rule's own declaration."""
    from recsys_checks.runbooks.verdict import OK_VERDICTS, VERDICTS

    fine = " or ".join(v for v in VERDICTS if v in OK_VERDICTS)
    not_fine = ", ".join(v for v in VERDICTS if v not in OK_VERDICTS)
    return (f"verdicts: {', '.join(VERDICTS)} (inconclusive: a step could not read what it checks; never healthy). "
            f"exit codes: 0 {fine}, 1 {not_fine}, or the run record could not be written (stderr lists every "
            "change applied), 2 bad input, 3 the state moved since the diagnosis and the surface is still not "
            "healthy. While it runs, <out>/ID.incomplete names the temporary folder the record is written in")


def _primary_metric(value: str) -> tuple[str, float | None]:
    from recsys_checks.core.errors import BadInput
    from recsys_checks.judge.evaluation.settings import parse_primary_metric

    try:
        return parse_primary_metric(value)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_eval(sub: Any) -> None:
    """`eval quality|report`."""
    json_only = argparse.ArgumentParser(add_help=False)
    json_only.add_argument("--json", action="store_true", help="print machine-readable JSON instead of tables")
    ev = sub.add_parser("eval", help="can evaluation data be trusted: joins, SRM, guardrails, impossible lift")
    esub = ev.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    p = esub.add_parser("quality", parents=[json_only],
                        help="read exposure/outcome/assignment JSONL logs; exit 0 trusted, 1 not, 2 unreadable")
    p.add_argument("--exposures", required=True, metavar="FILE", help="exposure JSONL (the suite's exposure.v1)")
    p.add_argument("--outcomes", required=True, metavar="FILE", help="outcome JSONL (outcome.v1)")
    p.add_argument("--assignments", metavar="FILE", help="assignment JSONL (assignment.v1): makes it an experiment")
    p.add_argument("--experiment-id", help="only this experiment's assignments (case-insensitive, as the suite)")
    p.add_argument("--min-join-rate", type=numbers.fraction, default=0.95,
                   help="outcome and assignment join rates below this are not trusted (default 0.95)")
    g = p.add_argument_group(
        "the suite's decision settings (default: ours, stricter than the suite's: both gates on, the guardrails of "
        "its shipped alerts, SRM on; each option overrides --config)")
    g.add_argument("--config", metavar="FILE", help="a recsys-eval config YAML: its experiment settings, read as the "
                   "suite reads them (its gates are off unless the file turns them on)")
    g.add_argument("--control", help="control variant (default: the one with the most exposures)")
    g.add_argument("--candidate", help="candidate variant (default: the next largest)")
    g.add_argument("--primary-metric", action="append", type=_primary_metric, metavar="NAME[:THRESHOLD]",
                   help="a primary metric (ctr, conversion_rate, revenue_per_request) and the delta below which it "
                   "fails (default threshold 0); repeat for several (default: ctr)")
    g.add_argument("--guardrail-gate", action=argparse.BooleanOptionalAction, default=None,
                   help="hold when the candidate fails a guardrail (ours: on; the suite's: off unless configured)")
    g.add_argument("--srm-gate", action=argparse.BooleanOptionalAction, default=None,
                   help="hold when SRM is detected (ours: on; the suite's: off unless configured)")
    g.add_argument("--max-latency-p95-ms", type=numbers.non_negative, help="guardrail (ours: 250; 0 off)")
    g.add_argument("--max-error-rate", type=numbers.fraction, help="guardrail (ours: 0.01; 0 off)")
    g.add_argument("--max-empty-rate", type=numbers.fraction, help="guardrail (ours: 0.02; 0 off)")
    g.add_argument("--srm-alpha", type=numbers.fraction, help="SRM significance level (default 0.001)")
    g.add_argument("--srm-min-sample", type=int, help="fewest assignments for SRM (default 100)")
    g.add_argument("--weights", type=_weights, help="expected variant weights, e.g. control=1,treatment=1 "
                   "(default: equal)")
    g.add_argument("--slice-keys", type=_names, help="context keys for SRM per segment, e.g. country,device")
    p.add_argument("--max-relative-lift", type=numbers.non_negative, default=0.5,
                   help="a relative lift above this is impossible, not a win (default 0.5 = +50%%; 0 off)")
    p.add_argument("--max-orphan-conversion-share", type=numbers.fraction, default=0.5,
                   help="conversions without a click above this share of all conversions are not trusted; below "
                   "it, a note (default 0.5)")
    p.set_defaults(run=_eval_quality)
    p = esub.add_parser("report", parents=[json_only],
                        help="triage a report recsys-eval wrote, with its own settings and decision file; exit 0 "
                        "trusted, 1 not, 2 unreadable")
    p.add_argument("file", metavar="FILE", help="the report JSON")
    p.add_argument("--decision", metavar="FILE", help="the suite's decision file (default: FILE.decision.json, or "
                   "the run's Decision.OutputPath)")
    p.add_argument("--min-join-rate", type=numbers.fraction, default=0.95, help="default 0.95")
    p.add_argument("--max-relative-lift", type=numbers.non_negative, default=0.5, help="default 0.5 (+50%%; 0 off)")
    p.add_argument("--max-orphan-conversion-share", type=numbers.fraction, default=0.5, help="default 0.5")
    p.set_defaults(run=_eval_report)


def _add_hold(sub: Any, common: argparse.ArgumentParser) -> None:
    """`hold set|clear|status`."""
    hold = sub.add_parser("hold", help="stop shipping a surface: set, clear or show its hold")
    hsub = hold.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND", parser_class=_Parser)
    for name, help_text in (("set", "hold a surface: the gate (`hold status`) a scheduler asks before each publish answers held (plan first)"),
                            ("clear", "lift the hold of a surface (plan first; the marker is kept, marked cleared)")):
        p = hsub.add_parser(name, parents=[common], help=help_text)
        _tenant(p), _surface(p)
        _execute(p)
        p.add_argument("--reason", default="", help="why, for the marker and the audit record")
        p.set_defaults(run=_hold_change, held=name == "set")
    p = hsub.add_parser("status", parents=[common], help="is the surface held? exit 1 while held (gate publishes on it)")
    _tenant(p), _surface(p)
    p.set_defaults(run=_hold_status)


def _param(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE")
    return name.strip(), text


def _runbook_list(args: argparse.Namespace) -> int:
    from recsys_checks.cli.runbook_output import print_list
    from recsys_checks.runbooks.spec import load_all

    return print_list(load_all(), args.json)


def _runbook_show(args: argparse.Namespace) -> int:
    from recsys_checks.cli.runbook_output import print_spec
    from recsys_checks.runbooks.spec import load_spec

    return print_spec(load_spec(args.id), args.json)


def _runbook_run(args: argparse.Namespace) -> int:
    from recsys_checks.cli.runbook_output import print_run_record
    from recsys_checks.runbooks.runner import run_runbook
    from recsys_checks.runbooks.verdict import OK_VERDICTS

    given: dict[str, str] = {}
    for name, value in args.param:
        if name in given:
            raise BadInput(f"parameter {name} is given twice")
        given[name] = value
    for name, value in (("reason", args.reason), ("plan_id", args.plan_id), ("confirm", args.confirm)):
        if value is None:
            continue
        if name in given:
            raise BadInput(f"give {name} once: --{name.replace('_', '-')} or -p {name}=..., not both")
        given[name] = value
    run_record, out = run_runbook(args.id, given, execute=args.execute, out_dir=args.out, timeout=float(args.timeout))
    print_run_record(run_record, out, args.json)
    if run_record.get("verdict") in OK_VERDICTS:
        return 0
    # The state moved since the diagnosis and the surface is still not healthy: the conflict exit, as for a plan.
    moved = any(s.get("role") == "act" and s.get("status") == "moved" for s in run_record.get("steps") or [])
    return Conflict.exit_code if moved else Unhealthy.exit_code


def _target(args: argparse.Namespace) -> Target:
    return Target.from_env(
        base_url=args.base_url, manifest_template=args.manifest_template, s3_endpoint=args.s3_endpoint
    )


def _health(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.serving.health import check_health

    return [check_health(_target(args))]


def _manifest_status(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.registry.manifest import check_manifest

    return [check_manifest(_target(args), args.tenant, args.surface, max_age=args.max_age)]


def _manifest_history(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.registry.history import check_manifest_history

    return [check_manifest_history(_target(args), args.tenant, args.surface, kind=args.kind)]


def _manifest_rollback(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.levers.rollback import apply_rollback, plan_rollback

    target = _target(args)
    plan = plan_rollback(
        target, args.tenant, args.surface, to=args.to, previous=args.previous, kind=args.kind, reason=args.reason
    )
    return [apply_rollback(target, plan, execute=args.execute, invalidate_cache=args.invalidate_cache,
                           plan_id=args.plan_id, confirm=args.confirm)]


def _freshness(args: argparse.Namespace) -> Streamed:
    from recsys_checks.judge.registry.freshness import stream

    if args.json and args.jsonl:
        raise ChecksError("give --json or --jsonl, not both")
    rows, finish = stream(_target(args), args.max_age, tenant=args.tenant, deep=args.deep, workers=args.workers)
    fmt = "jsonl" if args.jsonl else "json" if args.json else "text"
    out = progress_display.stdout_beside_bars(sys.stdout) if progress.active() else None
    return Streamed([emit_stream(rows, finish, fmt, out)])


def _recs_probe(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.serving.probe import check_recommendations
    from recsys_checks.judge.serving.served import check_served_vs_published

    target = _target(args)
    if not 1 <= args.k <= 200:
        raise ChecksError(f"-k {args.k} is out of range: the service accepts 1..200")
    result = check_recommendations(target, args.tenant, args.surface, user_id=args.user_id, k=args.k)
    return [result, check_served_vs_published(target, args.tenant, args.surface, k=args.k, user_id=args.user_id)]


def _recs_clients(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.serving.clients import check_client_answers

    if not 1 <= args.k <= 200:
        raise ChecksError(f"-k {args.k} is out of range: the service accepts 1..200")
    return [check_client_answers(_target(args), args.tenant, args.surface, k=args.k, user_id=args.user_id)]


def _doc_show(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.serving.documents import check_document

    return [check_document(_target(args), args.tenant, args.kind)]


def _doc_history(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.serving.documents import check_document_history

    return [check_document_history(_target(args), args.tenant, args.kind, limit=args.limit)]


def _doc_revert(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.levers.revert import apply_revert, plan_revert

    target = _target(args)
    plan = plan_revert(target, args.tenant, args.kind, to=args.to, previous=args.previous, reason=args.reason)
    return [apply_revert(target, plan, execute=args.execute, plan_id=args.plan_id, confirm=args.confirm)]


def _cache_invalidate(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.levers.cache import apply_invalidate, plan_invalidate

    target = _target(args)
    plan = plan_invalidate(target, args.tenant, args.targets, surface=args.surface, reason=args.reason)
    return [apply_invalidate(target, plan, execute=args.execute, plan_id=args.plan_id, confirm=args.confirm)]


def _timeline(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.timeline import check_timeline

    return [check_timeline(_target(args), args.tenant, surface=args.surface, since=args.since,
                           max_audit_records=args.max_audit_records)]


def _eval_quality(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.evaluation.quality import check_eval_quality
    from recsys_checks.judge.evaluation.settings import from_config_file

    metrics = args.primary_metric or []
    return [check_eval_quality(
        args.exposures, args.outcomes, args.assignments, args.experiment_id,
        settings=from_config_file(args.config) if args.config else None, min_join_rate=args.min_join_rate,
        srm_alpha=args.srm_alpha, srm_min_sample=args.srm_min_sample, expected_weights=args.weights,
        slice_keys=args.slice_keys, control_variant=args.control, candidate_variant=args.candidate,
        primary_metrics=[name for name, _ in metrics] or None,
        primary_thresholds={name: t for name, t in metrics if t is not None} or None,
        guardrail_gate=args.guardrail_gate, srm_gate=args.srm_gate,
        max_latency_p95_ms=args.max_latency_p95_ms, max_error_rate=args.max_error_rate,
        max_empty_rate=args.max_empty_rate, max_relative_lift=args.max_relative_lift,
        max_orphan_conversion_share=args.max_orphan_conversion_share,
    )]


def _eval_report(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.evaluation.report import check_eval_report

    return [check_eval_report(args.file, decision_file=args.decision, min_join_rate=args.min_join_rate,
                              max_relative_lift=args.max_relative_lift,
                              max_orphan_conversion_share=args.max_orphan_conversion_share)]


def _hold_change(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.levers.hold import apply_hold, plan_hold

    target = _target(args)
    plan = plan_hold(target, args.tenant, args.surface, held=args.held, reason=args.reason)
    return [apply_hold(target, plan, execute=args.execute, plan_id=args.plan_id, confirm=args.confirm)]


def _hold_status(args: argparse.Namespace) -> list[Any]:
    from recsys_checks.judge.registry.hold import check_hold

    return [check_hold(_target(args), args.tenant, args.surface)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = (args.command, getattr(args, "subcommand", None))
    machine = bool(getattr(args, "json", False) or getattr(args, "jsonl", False))
    try:
        with progress_display.for_command(command, machine_output=machine):
            results = args.run(args)
        if isinstance(results, int):  # a command that printed its own output
            return results
    except ChecksError as exc:
        # Last line of defence: no credential from the environment is ever printed, whatever built the message.
        message = credentials.mask(str(exc))
        sys.stderr.write(f"recsys-checks: error: {message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        reached = progress.where()
        sys.stderr.write(f"recsys-checks: interrupted{f' while {reached}' if reached else ''}; "
                         "nothing further was changed\n")
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours, and nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # a defect of ours: one masked line by default, the traceback when asked for
        if os.environ.get("RECSYS_CHECKS_DEBUG"):
            raise
        message = credentials.mask(f"{type(exc).__name__}: {exc}")
        sys.stderr.write(f"recsys-checks: internal error ({message}); nothing further was done. Re-run with "
                         "RECSYS_CHECKS_DEBUG=1 for the traceback and report it.\n")
        return 1
    code = exit_code(results)
    try:
        if not isinstance(results, Streamed):  # a streamed command has written its rows and its result already
            emit(results, args.json, exit_code=code, full_diff=bool(getattr(args, "full_diff", False)))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`... | head`): what was done is done; say nothing more and keep the exit code.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
