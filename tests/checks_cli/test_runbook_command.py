"""The one builder of a `runbook run` command line (recsys_checks.cli.runbook_command), used by the receiver and the
handbook's drills: what it builds is what the CLI's own parser reads back, option for option."""

from __future__ import annotations

from recsys_checks.cli.commands import build_parser
from recsys_checks.cli.runbook_command import runbook_run_args


def test_what_it_builds_the_cli_parses_back():
    args = runbook_run_args("stale-manifest", {"tenant": "acme", "surface": "home", "max_age": "48h"}, execute=True,
                            plan_id="0888603291b3", confirm="prod-eu", reason="RecsysManifestStale (incident x)",
                            out="/tmp/out", json=True)
    parsed = build_parser().parse_args(args)
    assert parsed.id == "stale-manifest" and parsed.execute and parsed.json
    assert parsed.param == [("tenant", "acme"), ("surface", "home"), ("max_age", "48h")]
    assert (parsed.plan_id, parsed.confirm, parsed.reason, str(parsed.out)) == (
        "0888603291b3", "prod-eu", "RecsysManifestStale (incident x)", "/tmp/out")


def test_a_dry_run_names_no_execute_and_keeps_the_order_the_receiver_shows():
    args = runbook_run_args("empty-recs", {"tenant": "t", "surface": "s"})
    assert args == ["runbook", "run", "empty-recs", "-p", "tenant=t", "-p", "surface=s"]
    assert not build_parser().parse_args(args).execute
