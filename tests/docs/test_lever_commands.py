"""A runbook page shows the commands its decision table has, and only those: each cause's lever with its dry run
first, then the apply of the plan it printed (``--execute --plan-id``); the commands of its check steps; nothing
else. The notebooks show no lever command of their own. Every command parses with the recsys-checks parser."""

from __future__ import annotations

import argparse
import html
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path

import pytest

from handbook_site import macros
from recsys_checks.cli.commands import build_parser
from recsys_checks.runbooks.decision import DecisionTable, Lever
from recsys_checks.runbooks.spec import load_all, load_spec

ROOT = Path(__file__).resolve().parents[2]
SPECS = load_all(ROOT / "runbooks")
# Values a reader puts in place of the placeholders, only to check that each command parses.
FILL = {"tenant": "demo", "surface": "home", "kind": "popularity", "to": "0123abcd", "targets": "rules",
        "plan": "0123456789ab", "reason": "why", "rerun_command": "true", "recovery_command": "true"}


def _act_section(page: str, spec) -> str:
    act = next(s for s in spec.steps if s.role == "act")
    start = re.search(rf"^### \d+\. {re.escape(act.title)}$", page, flags=re.M)
    assert start, "the page has no act step"
    rest = page[start.end():]
    return rest.split("\n### ", 1)[0].split("\n## ", 1)[0]


def _bash_blocks(markdown: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)]


def _row_commands(spec) -> list[str]:
    """Each distinct lever of the table once, in the table's order: its dry run, then its apply."""
    seen: list[str] = []
    for row in spec.decision:
        for c in row.lever.commands(spec.id, "{tenant}", "{surface}") if row.lever else []:
            for line in (c["dry_run"], c["apply"]):
                if line not in seen:
                    seen.append(line)
    return seen


@pytest.mark.parametrize("spec", [s for s in SPECS if any(s.role == "act" for s in s.steps)], ids=lambda s: s.id)
def test_the_act_step_shows_each_rows_commands_dry_run_first(spec):
    blocks = _bash_blocks(_act_section(macros.render(spec), spec))
    assert blocks == _row_commands(spec)
    for dry, apply in zip(blocks[::2], blocks[1::2], strict=True):
        assert "--execute" not in dry and apply.startswith(dry) and "--execute" in apply
    assert not any("--execute" in b and "--plan-id" not in b and "runbook run" not in b for b in blocks), \
        "an apply without the reviewed plan"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_a_page_shows_no_command_that_is_not_a_row_or_a_step(spec):
    page = macros.render(spec)
    allowed = set(_row_commands(spec)) | {s.command for s in spec.steps if s.command}
    shown = _bash_blocks(page)
    assert shown, "the page shows no command at all"
    assert set(shown) <= allowed, sorted(set(shown) - allowed)
    causes = [row.cause for row in spec.decision]
    table = page.split("## Decision tree", 1)[1].split("## Steps", 1)[0]
    assert [c for c in re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)] == causes


def test_the_commands_follow_the_table_when_a_row_changes():
    """Swap a row's lever in a copy of the table: the page shows the new commands and the old ones are gone."""
    spec = load_spec("empty-recs", ROOT / "runbooks")
    rows = tuple(replace(r, lever=Lever("cache-invalidate", {"targets": ["rules"]}))
                 if r.cause == "rules_block_all" else r for r in spec.decision)
    changed = replace(spec, decision=DecisionTable(rows))
    section = _act_section(macros.render(changed), changed)
    after = section.split("`rules_block_all`", 1)[1]
    assert _bash_blocks(after)[0] == "recsys-checks cache invalidate --tenant {tenant} --surface {surface} --targets rules"
    assert "recsys-checks rules revert --tenant {tenant} --previous" in _bash_blocks(_act_section(macros.render(spec), spec))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_every_row_command_is_a_real_command_line(spec):
    """Each dry run and apply parses with the recsys-checks parser once its placeholders are filled in."""
    parser = build_parser()
    for command in _row_commands(spec):
        fill = {**FILL, "kind": "rules"} if command.startswith("recsys-checks {kind} revert") else FILL
        argv = shlex.split(command.format(**fill))[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse reports a bad command line by exiting
            raise AssertionError(f"{spec.id}: {command!r} does not parse") from exc
        except argparse.ArgumentError as exc:
            raise AssertionError(f"{spec.id}: {command!r}: {exc}") from exc


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_a_notebook_shows_no_lever_command(spec):
    """The notebook's fix cell pulls the lever of the row it diagnosed: a lever command in the notebook is at most a
    step's own (read-only) command, never one of its own making."""
    nb = json.loads((ROOT / "notebooks" / f"{spec.id}.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    levers = re.findall(r"recsys-checks (?:manifest rollback|config revert|rules revert|cache invalidate|hold set|"
                        r"hold clear)[^`\n]*", text)
    steps = {s.command for s in spec.steps if s.command}
    assert all(any(line.strip().rstrip("`").startswith(c) for c in steps) for line in levers), levers


def test_the_built_page_shows_the_rows_commands(built_site):
    page = (built_site / "how-to" / "runbooks" / "empty-recs" / "index.html").read_text()
    start = re.search(r'<h3 id="(\d+-pull-the-lever[^"]*)"', page)
    assert start, "no act step heading on the built page"
    section = page[start.end():].split("<h3", 1)[0]
    blocks = [html.unescape(re.sub(r"<[^>]+>", "", b)).strip()
              for b in re.findall(r"<pre[^>]*>(.*?)</pre>", section, flags=re.S)]
    assert blocks == _row_commands(load_spec("empty-recs", ROOT / "runbooks"))

